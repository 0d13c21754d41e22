"""AG2's way of finding code in a message, with the standard library only.

Behaves as AG2 0.x's ``autogen.coding.MarkdownCodeExtractor`` and ``autogen.code_utils.extract_code`` (written
from their documented behaviour and tested against it; no AG2 code is included):

- a block opens with three backticks, optional spaces or tabs, an optional tag made of word characters (``\\w+``),
  optional spaces or tabs and a line break; it closes with a line break, optional indentation and three backticks.
  Backticks inside a line (``print("```")``) neither open nor close a block, and the line break before the closing
  fence is not part of the code;
- a tag that is not a run of word characters (``c++``, ``objective-c``) does not open a block at all;
- an untagged block is shell when it starts with ``python ``, ``python3 `` or ``pip``, Python when it compiles as
  Python, and otherwise has the empty language (which an executor answers with ``unknown language``);
- a message may be a string, None, or a list of OpenAI content parts (text parts joined by line breaks, media
  parts as ``<image>``, ``<audio>``, ``<video>``, function parts as ``<function>`` / ``<function: NAME>``).
"""

import re
import warnings

from ._types import CodeBlock

UNKNOWN = "unknown"

# The fence, spelled out: it accepts exactly the blocks AG2's CODE_BLOCK_PATTERN does.
_FENCED = re.compile(r"""
    ```            # opening fence
    [ \t]*         # spaces before the tag
    (\w+)?         # the tag (language), optional
    [ \t]*\r?\n    # spaces after it, then the end of the fence line
    (.*?)          # the code, as short as possible
    \r?\n[ \t]*``` # a closing fence at the start of a line (indentation allowed)
""", re.DOTALL | re.VERBOSE)

# Untagged code starting like a command line is shell, as AG2 decides it.
_SHELL_STARTS = ("python ", "pip", "python3 ")
_MEDIA_PARTS = {"image_url": "<image>", "input_image": "<image>", "audio_url": "<audio>", "input_audio": "<audio>",
                "video_url": "<video>", "input_video": "<video>"}


def content_str(content):
    """A message's content as text: a string as it is, None as "", a list of content parts joined by line breaks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TypeError("content must be None, str, or list, but got %s" % type(content))
    parts = []
    for item in content:
        if not isinstance(item, dict):
            raise TypeError("Wrong content format: every element should be dict if the content is a list.")
        kind = item.get("type")
        if kind is None:
            raise ValueError("Wrong content format. Missing 'type' key in content's dict.")
        if kind in ("text", "input_text"):
            parts.append(item["text"])
        elif kind in _MEDIA_PARTS:
            parts.append(_MEDIA_PARTS[kind])
        elif kind in ("function", "tool_call", "tool_calls"):
            parts.append("<function: %s>" % item["name"] if "name" in item else "<function>")
        else:
            raise ValueError("Wrong content format: unknown type %s within the content" % kind)
    return "\n".join(parts)


def infer_lang(code):
    """The language of an untagged block: "sh", "python" or UNKNOWN (AG2's rule; compiling never runs the code)."""
    if code.startswith(_SHELL_STARTS):
        return "sh"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for an odd escape: not ours to print
            compile(code, "<code block>", "exec")
    except SyntaxError:
        return UNKNOWN
    except (ValueError, RecursionError, MemoryError, OverflowError):
        # NUL bytes, absurd nesting: AG2 would let these escape and end the chat; not Python either way
        return UNKNOWN
    return "python"


def extract_code(text):
    """AG2's ``extract_code``: the (language, code) pairs of a message's fenced blocks, language "" when untagged;
    ``[("unknown", text)]`` when the message has no block."""
    text = content_str(text)
    found = _FENCED.findall(text)
    return found if found else [(UNKNOWN, text)]


class MarkdownCodeExtractor:
    """AG2's ``MarkdownCodeExtractor``: fenced blocks as ``CodeBlock`` objects (AG2's own when ``autogen`` is
    importable), the language of untagged blocks inferred, ``[]`` when the message has none."""

    def extract_code_blocks(self, message):
        if isinstance(message, dict):
            # a whole chat message, as some callers pass it
            message = message.get("content")
        blocks = []
        for language, code in _FENCED.findall(content_str(message)):
            if language == "":
                language = infer_lang(code)
            if language == UNKNOWN:
                language = ""
            blocks.append(CodeBlock(code=code, language=language))
        return blocks
