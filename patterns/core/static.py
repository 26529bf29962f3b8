"""WhiteNoise in an async middleware chain.

WhiteNoise's middleware is sync-only, and one sync-only middleware makes Django run the whole chain, async views
included, through its single thread for sync code: a streaming download's first phase then holds that thread and
every page waits behind it. This subclass serves static files the same way and otherwise awaits the next handler,
so the chain stays async and a page never queues behind another request's work.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from whitenoise.middleware import WhiteNoiseMiddleware


class AsyncWhiteNoise(WhiteNoiseMiddleware):
    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        super().__init__(get_response)
        assert iscoroutinefunction(get_response)  # Django hands an async-capable middleware an async handler
        markcoroutinefunction(self)

    async def __call__(self, request):
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        if static_file is not None:
            return self.serve(static_file, request)
        return await self.get_response(request)
