"""Block Kit validation and mrkdwn linting, enforced server-side like Slack.

Owns the limits table (blocks per surface, text lengths, element counts, id lengths,
confirm dialogs, modal title/submit/close, private_metadata) and produces Slack-style
error strings ``"<message> [json-pointer:/blocks/N/...]"``.  Also finds *lint*: raw
``<``/``>`` in mrkdwn that do not form a Slack token, and ``<!channel>``/``<!here>``/
``<!everyone>`` pings.  Lint never rejects; callers record it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}
KNOWN_BLOCKS = {
    "section",
    "divider",
    "image",
    "actions",
    "context",
    "input",
    "header",
    "rich_text",
    "file",
    "video",
    "markdown",
    "call",
    "table",
    "context_actions",
}
TEXT_TYPES = {"plain_text", "mrkdwn"}
INTERACTIVE_ELEMENTS = {
    "button",
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
    "overflow",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "plain_text_input",
    "checkboxes",
    "radio_buttons",
    "email_text_input",
    "url_text_input",
    "number_input",
    "rich_text_input",
    "file_input",
    "workflow_button",
}
SECTION_ACCESSORIES = INTERACTIVE_ELEMENTS | {"image"}
CONTEXT_ELEMENTS = TEXT_TYPES | {"image"}

# Slack tokens that may legitimately appear between < and > in mrkdwn.
_TOKEN_RE = re.compile(
    r"^(?:@[UW][A-Z0-9]+(?:\|[^<>]*)?"
    r"|#[CGD][A-Z0-9]+(?:\|[^<>]*)?"
    r"|!subteam\^[A-Z0-9]+(?:\|[^<>]*)?"
    r"|!(?:here|channel|everyone)(?:\|[^<>]*)?"
    r"|!date\^[0-9]+\^[^<>]*"
    r"|(?:https?|mailto|tel|slack):[^<>|\s]+(?:\|[^<>]*)?)$"
)
_PING_RE = re.compile(r"<!(here|channel|everyone)(?:\|[^<>]*)?>")


@dataclass
class LintFinding:
    """A lint finding before it is attributed to a method/channel."""

    kind: str
    pointer: str
    detail: str
    snippet: str


@dataclass
class Validation:
    """Result of validating a payload: hard errors (reject) and lint (record only)."""

    errors: list[str] = field(default_factory=list)
    lint: list[LintFinding] = field(default_factory=list)

    def add(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    @property
    def ok(self) -> bool:
        return not self.errors


def lint_mrkdwn(text: str, pointer: str) -> list[LintFinding]:
    """Raw ``<``/``>`` that do not form a Slack token, and broadcast pings."""
    out: list[LintFinding] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            end = text.find(">", i + 1)
            nxt = text.find("<", i + 1)
            if end != -1 and (nxt == -1 or end < nxt) and _TOKEN_RE.match(text[i + 1 : end]):
                i = end + 1
                continue
            if end != -1 and (nxt == -1 or end < nxt):
                out.append(
                    LintFinding(
                        "raw_angle_bracket",
                        pointer,
                        f"{text[i : end + 1]!r} is not a Slack token; escape < and > as &lt; &gt;",
                        text[max(0, i - 20) : end + 20],
                    )
                )
                i = end + 1
                continue
            out.append(
                LintFinding(
                    "raw_angle_bracket",
                    pointer,
                    "raw '<' in mrkdwn; escape it as &lt; unless it starts a Slack token",
                    text[max(0, i - 20) : i + 20],
                )
            )
        elif ch == ">":
            # '>' at line start is a blockquote in mrkdwn; elsewhere it should be &gt;
            line_start = i == 0 or text[i - 1] == "\n"
            if not line_start:
                out.append(
                    LintFinding(
                        "raw_angle_bracket",
                        pointer,
                        "raw '>' in mrkdwn; escape it as &gt;",
                        text[max(0, i - 20) : i + 20],
                    )
                )
        i += 1
    for m in _PING_RE.finditer(text):
        out.append(LintFinding("broadcast_ping", pointer, f"message pings @{m.group(1)}", m.group(0)))
    return out


class _Validator:
    def __init__(self, surface: str) -> None:
        self.surface = surface
        self.v = Validation()

    # --- helpers ---
    def is_obj(self, value: Any, ptr: str) -> bool:
        if not isinstance(value, dict):
            self.v.add("must provide an object", ptr)
            return False
        return True

    def max_len(self, value: Any, limit: int, ptr: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.v.add(f"must be less than {limit + 1} characters", ptr)

    def required_str(self, obj: dict[str, Any], key: str, ptr: str) -> str | None:
        val = obj.get(key)
        if val is None:
            self.v.add(f"missing required field: {key}", ptr)
            return None
        if not isinstance(val, str):
            self.v.add("must be a string", f"{ptr}/{key}")
            return None
        return val

    def text_obj(
        self, obj: Any, ptr: str, limit: int | None = None, plain_only: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.v.add("must provide an object", ptr)
            return
        if not self.is_obj(obj, ptr):
            return
        ttype = obj.get("type")
        if ttype is None:
            self.v.add("missing required field: type", ptr)
            return
        if ttype not in TEXT_TYPES:
            self.v.add(f"must be one of plain_text, mrkdwn, got {ttype!r}", f"{ptr}/type")
            return
        if plain_only and ttype != "plain_text":
            self.v.add("must be a valid enum value: plain_text", f"{ptr}/type")
        text = self.required_str(obj, "text", ptr)
        if text is None:
            return
        if len(text) == 0:
            self.v.add("must be more than 0 characters", f"{ptr}/text")
        if limit is not None:
            self.max_len(text, limit, f"{ptr}/text")
        if ttype == "mrkdwn":
            self.v.lint.extend(lint_mrkdwn(text, f"{ptr}/text"))

    def ident(self, obj: dict[str, Any], key: str, ptr: str) -> None:
        val = obj.get(key)
        if val is None:
            return
        if not isinstance(val, str):
            self.v.add("must be a string", f"{ptr}/{key}")
        else:
            self.max_len(val, 255, f"{ptr}/{key}")

    def confirm(self, obj: Any, ptr: str) -> None:
        if not self.is_obj(obj, ptr):
            return
        self.text_obj(obj.get("title"), f"{ptr}/title", 100, plain_only=True)
        self.text_obj(obj.get("text"), f"{ptr}/text", 300)
        self.text_obj(obj.get("confirm"), f"{ptr}/confirm", 30, plain_only=True)
        self.text_obj(obj.get("deny"), f"{ptr}/deny", 30, plain_only=True)
        style = obj.get("style")
        if style is not None and style not in ("primary", "danger"):
            self.v.add("must be a valid enum value: primary, danger", f"{ptr}/style")

    def option(self, opt: Any, ptr: str) -> None:
        if not self.is_obj(opt, ptr):
            return
        self.text_obj(opt.get("text"), f"{ptr}/text", 75)
        val = opt.get("value")
        if val is not None:
            self.max_len(val, 150, f"{ptr}/value")

    def element(self, el: Any, ptr: str, allowed: set[str]) -> None:
        if not self.is_obj(el, ptr):
            return
        etype = el.get("type")
        if etype is None:
            self.v.add("missing required field: type", ptr)
            return
        if etype not in allowed:
            self.v.add(f"unsupported type: {etype}", f"{ptr}/type")
            return
        self.ident(el, "action_id", ptr)
        if "confirm" in el:
            self.confirm(el["confirm"], f"{ptr}/confirm")
        if etype == "button":
            self.text_obj(el.get("text"), f"{ptr}/text", 75, plain_only=True)
            self.max_len(el.get("value"), 2000, f"{ptr}/value")
            self.max_len(el.get("url"), 3000, f"{ptr}/url")
            style = el.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.v.add("must be a valid enum value: primary, danger", f"{ptr}/style")
        elif etype == "image":
            self.max_len(el.get("alt_text"), 2000, f"{ptr}/alt_text")
            if "alt_text" not in el:
                self.v.add("missing required field: alt_text", ptr)
        elif etype in ("static_select", "multi_static_select", "overflow", "checkboxes", "radio_buttons"):
            opts = el.get("options")
            groups = el.get("option_groups")
            if opts is None and groups is None:
                self.v.add("missing required field: options", ptr)
            if opts is not None:
                if not isinstance(opts, list):
                    self.v.add("must provide an array", f"{ptr}/options")
                else:
                    cap = 5 if etype == "overflow" else (10 if etype in ("checkboxes", "radio_buttons") else 100)
                    if len(opts) > cap:
                        self.v.add(f"must provide no more than {cap} items", f"{ptr}/options")
                    for i, opt in enumerate(opts):
                        self.option(opt, f"{ptr}/options/{i}")
        if "placeholder" in el:
            self.text_obj(el.get("placeholder"), f"{ptr}/placeholder", 150, plain_only=True)

    # --- blocks ---
    def blocks(self, blocks: Any, ptr: str = "/blocks") -> Validation:
        if not isinstance(blocks, list):
            self.v.add("must provide an array", ptr)
            return self.v
        cap = MAX_BLOCKS.get(self.surface, 50)
        if len(blocks) > cap:
            self.v.add(f"no more than {cap} items allowed", ptr)
        for i, block in enumerate(blocks):
            self.block(block, f"{ptr}/{i}")
        return self.v

    def block(self, b: Any, ptr: str) -> None:
        if not self.is_obj(b, ptr):
            return
        btype = b.get("type")
        if btype is None:
            self.v.add("missing required field: type", ptr)
            return
        if not isinstance(btype, str) or btype not in KNOWN_BLOCKS:
            self.v.add(f"unsupported type: {btype}", f"{ptr}/type")
            return
        self.ident(b, "block_id", ptr)
        if btype == "section":
            if "text" not in b and "fields" not in b:
                self.v.add("must provide either text or fields", ptr)
            if "text" in b:
                self.text_obj(b["text"], f"{ptr}/text", 3000)
            if "fields" in b:
                fields = b["fields"]
                if not isinstance(fields, list):
                    self.v.add("must provide an array", f"{ptr}/fields")
                else:
                    if len(fields) > 10:
                        self.v.add("must provide no more than 10 items", f"{ptr}/fields")
                    for i, f in enumerate(fields):
                        self.text_obj(f, f"{ptr}/fields/{i}", 2000)
            if "accessory" in b:
                self.element(b["accessory"], f"{ptr}/accessory", SECTION_ACCESSORIES)
        elif btype == "header":
            self.text_obj(b.get("text"), f"{ptr}/text", 150, plain_only=True)
        elif btype == "context":
            els = b.get("elements")
            if not isinstance(els, list):
                self.v.add("must provide an array", f"{ptr}/elements")
                return
            if not els:
                self.v.add("must provide at least 1 item", f"{ptr}/elements")
            if len(els) > 10:
                self.v.add("must provide no more than 10 items", f"{ptr}/elements")
            for i, el in enumerate(els):
                eptr = f"{ptr}/elements/{i}"
                if isinstance(el, dict) and el.get("type") in TEXT_TYPES:
                    self.text_obj(el, eptr)
                else:
                    self.element(el, eptr, {"image"})
        elif btype == "actions":
            els = b.get("elements")
            if not isinstance(els, list):
                self.v.add("must provide an array", f"{ptr}/elements")
                return
            if not els:
                self.v.add("must provide at least 1 item", f"{ptr}/elements")
            if len(els) > 25:
                self.v.add("must provide no more than 25 items", f"{ptr}/elements")
            for i, el in enumerate(els):
                self.element(el, f"{ptr}/elements/{i}", INTERACTIVE_ELEMENTS - {"plain_text_input"})
        elif btype == "image":
            self.max_len(b.get("alt_text"), 2000, f"{ptr}/alt_text")
            self.max_len(b.get("image_url"), 3000, f"{ptr}/image_url")
            if "alt_text" not in b:
                self.v.add("missing required field: alt_text", ptr)
            if "title" in b:
                self.text_obj(b["title"], f"{ptr}/title", 2000, plain_only=True)
        elif btype == "input":
            self.text_obj(b.get("label"), f"{ptr}/label", 2000, plain_only=True)
            if "hint" in b:
                self.text_obj(b["hint"], f"{ptr}/hint", 2000, plain_only=True)
            if "element" not in b:
                self.v.add("missing required field: element", ptr)
            else:
                self.element(b["element"], f"{ptr}/element", INTERACTIVE_ELEMENTS - {"button", "overflow"})
        elif btype == "markdown":
            text = b.get("text")
            if not isinstance(text, str):
                self.v.add("missing required field: text", ptr)
            else:
                self.max_len(text, 12000, f"{ptr}/text")
        elif btype == "rich_text" and not isinstance(b.get("elements"), list):
            self.v.add("must provide an array", f"{ptr}/elements")


def validate_blocks(blocks: Any, surface: str = "message", pointer: str = "/blocks") -> Validation:
    """Validate a list of blocks for ``surface`` ("message", "modal" or "home")."""
    return _Validator(surface).blocks(blocks, pointer)


def validate_view(view: Any) -> Validation:
    """Validate a ``view`` object for views.open/update/push/publish (pointers start at ``/view``)."""
    val = _Validator("modal")
    if not isinstance(view, dict):
        val.v.add("must provide an object", "/view")
        return val.v
    vtype = view.get("type")
    if vtype not in ("modal", "home"):
        val.v.add("must be a valid enum value: modal, home", "/view/type")
        return val.v
    val.surface = vtype
    if vtype == "modal":
        val.text_obj(view.get("title"), "/view/title", 24, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                val.text_obj(view[key], f"/view/{key}", 24, plain_only=True)
        if "submit" not in view and any(
            isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or []
        ):
            val.v.add("must provide submit when using input blocks", "/view/submit")
    val.max_len(view.get("private_metadata"), 3000, "/view/private_metadata")
    val.max_len(view.get("callback_id"), 255, "/view/callback_id")
    val.max_len(view.get("external_id"), 255, "/view/external_id")
    val.blocks(view.get("blocks"), "/view/blocks")
    return val.v
