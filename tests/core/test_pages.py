"""Pages and downloads, generic over the registry (exercised here with the toy pattern)."""

import pytest

from patterns.core.registry import all_patterns

from .toy import TOY


def test_home_lists_every_registered_pattern_with_its_summary_and_diagram(client):
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    for pattern in all_patterns():
        assert pattern.title in body and f"/patterns/{pattern.slug}/" in body
    assert 'data-diagram="toy-nodes"' in body and "mermaid.min.js" in body and 'id="frame-data"' in body


def test_pattern_page_has_the_controls_form_and_initial_frame(client):
    body = client.get("/patterns/toy/?seed=3&rate=9&do=2:bump:node=1,by=2").content.decode()
    for needle in (
        'ws-connect="/ws/patterns/toy/"',
        ">Start</button>",
        ">Pause</button>",
        ">Step</button>",
        'id="share-button"',
        'name="speed"',
        'id="timeline"',
        'id="frame-data"',
        'name="rate" value="9"',
        'name="do" value="2:bump:node=1,by=2"',
        ">Bump</button>",
        'data-diagram="nodes"',
        '<input type="text" name="name" value="a.b|c" pattern=',  # a text argument, checked in the browser too
        'class="diagram-details"',
    ):
        assert needle in body, needle


def test_presets_are_a_grouped_picker_and_the_chosen_ones_story_is_visible_text(client):
    body = client.get("/patterns/toy/").content.decode()
    needles = ('<option value="busy"', '<optgroup label="Slow ones">', '<option value="calm"')
    positions = [body.index(needle) for needle in needles]
    assert positions == sorted(positions)
    chosen = client.get("/patterns/toy/?preset=calm").content.decode()
    assert '<option value="calm" selected>' in chosen
    story = chosen.split('id="preset-story"')[1].split("</p>")[0]
    assert TOY.preset("calm").story in story


def test_a_hostile_link_gets_a_clear_message_not_a_traceback(client):
    response = client.get("/patterns/toy/?rate=%00%ff&nodes=99&do=-1:bump&%3Cscript%3E=1")
    body = response.content.decode()
    assert response.status_code == 400
    assert "nodes: 99 is above the maximum 8" in body and "should be a number of seconds" in body
    assert "<script>=" not in body and "Traceback" not in body
    assert 'name="nodes" value="3"' in body  # the page still works, with the defaults


def test_unknown_pattern_is_a_404(client):
    assert client.get("/patterns/nope/").status_code == 404


@pytest.mark.parametrize("query", ["until=-1", "until=1e9", "until=x", "rate=0"])
def test_bad_downloads_are_400_with_the_reason(client, query):
    response = client.get(f"/patterns/toy/events.jsonl?{query}")
    assert response.status_code == 400 and response.content.strip()


def test_describe_json(client):
    data = client.get("/patterns/toy/describe.json").json()
    assert data["slug"] == "toy" and data["commands"][0]["name"] == "bump"
    assert [e["type"] for e in data["event_types"]] == ["command", "command.ignored", "tick"]


def test_not_found_pages_are_friendly(client):
    response = client.get("/patterns/nope/")
    assert response.status_code == 404 and "See every pattern" in response.content.decode()


def test_home_previews_are_pictures_in_the_page_itself(client):
    """Each pattern with a server-drawn picture shows it in the page as sent: nothing to wait for, no Mermaid."""
    body = client.get("/").content.decode()
    for slug in ("raft", "circuit-breaker", "load-balancing", "messaging"):
        start = body.index(f'data-diagram="{slug}-')
        figure = body[start : body.index("</figure>", start)]
        assert '<div class="diagram-view"><' in figure and "<svg" in figure and 'role="img"' in figure
