"""Instagram messaging adapter: ``POST {base}/v21.0/{page_id}/messages``, Bearer token.

The Send API of :mod:`herald.adapters.meta.messenger` with Instagram's facts: the recipient
is an IGSID, only the ``HUMAN_AGENT`` tag exists, texts are up to 1,000 characters and
only generic templates are sent. Attachment size limits (images 8 MB, video and audio
25 MB) are facts of the file behind the URL, which Herald does not fetch: Meta's own
error (100/2018109) reports them.
"""

from __future__ import annotations

from typing import Any

from httpx import Response

from herald.adapters.meta.graph import graph_url
from herald.adapters.meta.messenger import SendApiAdapter
from herald.config import ChannelType, InstagramChannel


class InstagramAdapter(SendApiAdapter[InstagramChannel]):
    """Sends to Instagram users (IGSIDs) as one professional account."""

    channel_type = ChannelType.INSTAGRAM
    config_type = InstagramChannel
    name = "instagram"
    text_max = 1000
    tags = frozenset({"HUMAN_AGENT"})
    template_types = frozenset({"generic"})

    def setup(self, channel: InstagramChannel) -> None:
        self._url = graph_url(channel.base_url, channel.page_id, "messages")
        self._upload_url = graph_url(channel.base_url, channel.page_id, "message_attachments")
        self._token = channel.access_token

    @property
    def account(self) -> str:
        return self.channel.page_id

    def _upload_post(self, *, data: dict[str, str], files: dict[str, Any]) -> Response:
        headers = {"authorization": f"Bearer {self._token.get_secret_value()}"}
        return self.http.request(
            "POST",
            self._upload_url,
            what=f"{self.name} attachment upload",
            headers=headers,
            data=data,
            files=files,
        )

    def _post(self, body: bytes) -> Response:
        headers = {
            "authorization": f"Bearer {self._token.get_secret_value()}",
            "content-type": "application/json",
        }
        return self.http.request("POST", self._url, what=self.name, content=body, headers=headers)
