"""Browser tests: static/playground/live.js in real Chromium, driven by Playwright."""
