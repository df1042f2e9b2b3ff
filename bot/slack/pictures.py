"""Pictures as Slack image files: an answer's `Picture` drawn to PNG and wrapped as a `SlackFile`
whose title and alt text are escaped like every other text bound for Slack."""

from __future__ import annotations

from bot.model import Picture
from bot.slack.message import SlackFile
from bot.timeline.pictures import draw


def picture_file(picture: Picture) -> SlackFile:
    """The picture as an image file to upload (files upload v2), alt text and title escaped."""
    return SlackFile.image(
        picture.filename, draw(picture.kind, picture.data), title=picture.title, alt_text=picture.alt_text
    )
