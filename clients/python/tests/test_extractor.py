"""AG2's extraction rules (autogen.coding.MarkdownCodeExtractor, autogen.code_utils.extract_code), offline."""

import unittest

from agentexec import CodeBlock, MarkdownCodeExtractor, content_str, extract_code, infer_lang


def blocks(message):
    return [(b.language, b.code) for b in MarkdownCodeExtractor().extract_code_blocks(message)]


class ExtractorTest(unittest.TestCase):
    def test_tagged_blocks_in_order_without_the_newline_before_the_closing_fence(self):
        message = "Run this:\n```python\nprint('hi')\n```\nand\n```sh\necho there\n```\n"
        self.assertEqual([("python", "print('hi')"), ("sh", "echo there")], blocks(message))

    def test_an_inner_fence_inside_a_line_does_not_cut_the_block(self):
        message = '```python\nprint("```")\nprint("done")\n```'
        self.assertEqual([("python", 'print("```")\nprint("done")')], blocks(message))

    def test_indented_closing_fence_and_crlf(self):
        self.assertEqual([("python", "x = 1\r\ny = 2")], blocks("```python\r\nx = 1\r\ny = 2\r\n   ```"))
        self.assertEqual([("bash", "ls")], blocks("``` bash \nls\n```"))

    def test_untagged_blocks_are_inferred_as_ag2_does(self):
        self.assertEqual([("sh", "pip install numpy")], blocks("```\npip install numpy\n```"))
        self.assertEqual([("sh", "python3 script.py")], blocks("```\npython3 script.py\n```"))
        self.assertEqual([("sh", "python script.py")], blocks("```\npython script.py\n```"))
        self.assertEqual([("python", "print(1 + 1)")], blocks("```\nprint(1 + 1)\n```"))
        # AG2 does not take `echo` for shell: it is not Python either, so the language is empty
        self.assertEqual([("", "echo hello")], blocks("```\necho hello\n```"))
        # leading spaces are not stripped before the shell test (and the indented code is not valid Python)
        self.assertEqual([("", "  pip install x")], blocks("```\n  pip install x\n```"))

    def test_odd_tags(self):
        self.assertEqual([("1c", "foo")], blocks("```1c\nfoo\n```"))
        tag = "a" * 33
        self.assertEqual([(tag, "x")], blocks("```%s\nx\n```" % tag))
        self.assertEqual([("Python", "print(1)")], blocks("```Python\nprint(1)\n```"))  # case kept, as AG2
        # a tag that is not a run of word characters opens no block: AG2 then pairs the next fences
        self.assertEqual([], blocks("```c++\nint main(){}\n```"))
        self.assertEqual([("python", "text")], blocks("```c++\nint x;\n```\ntext\n```python\nx\n```"))
        # the tag "unknown" is AG2's marker for "not code": the language becomes empty
        self.assertEqual([("", "x")], blocks("```unknown\nx\n```"))

    def test_no_block_and_unclosed_block(self):
        self.assertEqual([], blocks("no code here"))
        self.assertEqual([], blocks("```python\nprint(1)"))
        self.assertEqual([], blocks("```python\n```"))  # the line break before the closing fence is required
        self.assertEqual([], blocks(None))

    def test_multimodal_content(self):
        content = [{"type": "text", "text": "look:"}, {"type": "image_url", "image_url": {"url": "x"}},
                   {"type": "text", "text": "```python\nprint(2)\n```"}]
        self.assertEqual("look:\n<image>\n```python\nprint(2)\n```", content_str(content))
        self.assertEqual([("python", "print(2)")], blocks(content))
        self.assertEqual("<function: f>\n<function>", content_str([{"type": "function", "name": "f"},
                                                                   {"type": "tool_calls"}]))
        with self.assertRaises(ValueError):
            content_str([{"type": "hologram"}])
        with self.assertRaises(TypeError):
            content_str(["not a dict"])

    def test_a_whole_message_dict(self):
        self.assertEqual([("sh", "ls")], blocks({"role": "assistant", "content": "```sh\nls\n```"}))

    def test_extract_code_pairs(self):
        self.assertEqual([("", "print(1)")], extract_code("```\nprint(1)\n```"))
        self.assertEqual([("unknown", "plain text")], extract_code("plain text"))

    def test_infer_lang_never_raises(self):
        self.assertEqual("unknown", infer_lang("x = (" * 10000))
        self.assertEqual("unknown", infer_lang("print(1)\x00"))
        self.assertEqual("python", infer_lang(""))

    def test_blocks_are_the_code_block_type(self):
        found = MarkdownCodeExtractor().extract_code_blocks("```python\nprint(1)\n```")[0]
        self.assertIsInstance(found, CodeBlock)
        self.assertEqual(CodeBlock(code="print(1)", language="python"), found)


if __name__ == "__main__":
    unittest.main()
