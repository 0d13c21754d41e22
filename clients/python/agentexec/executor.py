"""AG2's CodeExecutor protocol over agentexec: a drop-in for AG2 0.x's command-line executors."""

import hashlib
import os
import re
import threading
import warnings

from ._types import AgentexecCodeResult
from .client import AgentexecClient, AgentexecError
from .extractor import MarkdownCodeExtractor

# One image with python3, bash/coreutils and node (images/build.sh polyglot): every block of a chat, whatever its
# language, runs in one sandbox and sees the files the others wrote.
DEFAULT_IMAGE = os.environ.get("AGENTEXEC_IMAGE", "agentexec/polyglot:bookworm")

# What the gateway runs when it cannot be asked (GET /v1/languages): its built-in table.
_BUILTIN_LANGUAGES = {"python": ("py", ["py", "python3"]), "bash": ("sh", ["sh", "shell"]),
                      "javascript": ("js", ["js", "node", "nodejs"])}
# The engine's rule for a block's file name: a first line `# filename: NAME` or `// filename: NAME`.
_FILENAME_DIRECTIVE = re.compile(r"^\s*(?:#|//)\s*filename:\s*(.+?)\s*$")
_MB = 1024 * 1024


class AgentexecCodeExecutor:
    """Runs AG2's code blocks in one agentexec sandbox, whose workspace (AG2's ``work_dir``) lasts across turns.

    Blocks run in order and stop at the first failure, as with AG2's executors; a block in a language the gateway
    does not run gets AG2's answer (exit code 1, ``unknown language X``) after the blocks before it ran. The result
    is AG2's ``CommandLineCodeResult`` (``exit_code``, ``output``, ``code_file``) plus ``verdict`` and ``result``.
    Every verdict other than OK adds one line in words to the output, which is what the model reads.

    ``timeout`` is AG2's per-block timeout in seconds; ``limits`` a dict of the gateway's limits
    (``{"memoryMb": 512, "outputBytes": 65536, ...}``). ``image`` is the sandbox image: the polyglot image by
    default (``None``: the server's image for ``sandbox_language``).

    The seed's executors apply to every run: ``policy`` ("secure" or a list of forbidden patterns), ``retries`` (the
    most attempts of a failing run), ``cache`` (answer identical code from the tenant's cache) and ``executor`` (the
    name the runs are counted under in the server's statistics, ``client.stats()``).
    """

    def __init__(self, url, api_key=None, timeout=60, limits=None, image=DEFAULT_IMAGE, sandbox_language="python",
                 profile=None, policy=None, retries=None, cache=None, executor=None):
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds; got %r" % (timeout,))
        # a run answers once all its blocks ended; the server's heartbeats keep each read shorter than this
        self.client = AgentexecClient(url, api_key, timeout=max(30.0, float(timeout) * 3 + 30))
        self.limits = dict(limits or {})
        self.limits.setdefault("timeoutSeconds", timeout)
        self.image = image
        self.sandbox_language = sandbox_language
        self.profile = profile
        # the seed's executors, asked of every run (None: not asked)
        self.executor_options = {k: v for k, v in (("policy", policy), ("retries", retries), ("cache", cache),
                                                   ("executor", executor)) if v is not None}
        self._sandbox_id = None
        self._lost = None  # why the previous sandbox is gone, said in the next reply
        self._languages = None
        self._lock = threading.Lock()
        self._extractor = MarkdownCodeExtractor()

    @property
    def code_extractor(self):
        return self._extractor

    @property
    def sandbox_id(self):
        """The sandbox in use (None before the first run): its files are at ``client.get_file(sandbox_id, path)``."""
        return self._sandbox_id

    @property
    def timeout(self):
        return self.limits["timeoutSeconds"]

    # -- AG2's protocol

    def execute_code_blocks(self, code_blocks):
        """Runs the blocks in order in the sandbox, stopping at the first failure, and returns AG2's result."""
        with self._lock:
            return self._execute([self._normalise(b) for b in code_blocks])

    def restart(self):
        """AG2's restart (as its Docker executor): the workspace and its files stay, processes start afresh.

        Every process a run starts is killed when the run ends, so there is nothing left to stop; a sandbox that
        is no longer usable is given up, and the next run starts a fresh one and says the files were lost.
        """
        with self._lock:
            if self._sandbox_id is None:
                return
            try:
                status = self.client.get_sandbox(self._sandbox_id).get("status")
            except AgentexecError as e:
                if e.status != 404:
                    raise
                status = "gone"
            if status != "active":
                self._give_up("the sandbox was %s at restart" % status)

    def stop(self):
        """Deletes the sandbox and its workspace (AG2's Docker executor's ``stop``)."""
        with self._lock:
            if self._sandbox_id is not None:
                sandbox_id, self._sandbox_id = self._sandbox_id, None
                try:
                    self.client.delete_sandbox(sandbox_id)
                except AgentexecError as e:
                    if e.status != 404:
                        raise

    def close(self):
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- the work

    @staticmethod
    def _normalise(block):
        if isinstance(block, dict):
            language, code = block.get("language"), block.get("code")
        elif isinstance(block, (tuple, list)) and len(block) == 2:
            language, code = block  # AG2's extract_code pairs
        else:
            language, code = getattr(block, "language", None), getattr(block, "code", None)
        return (language or "").lower(), code or ""

    def _execute(self, blocks):
        if not blocks:
            return AgentexecCodeResult(exit_code=0, output="", code_file=None, verdict="OK", result={})
        known = self._known_languages()
        runnable = []
        unknown = None
        for language, code in blocks:
            if language not in known:
                unknown = language
                break
            runnable.append((language, code))

        notes = []
        result = {}
        output = ""
        exit_code = 0
        code_file = None
        if runnable:
            result = self._run(runnable, notes)
            output = result.get("output", "")
            exit_code = result.get("exitCode", 1)
            if result.get("blocks"):
                code_file = self._file_name(*runnable[0], known=known)
            verdict = result.get("verdict")
            if verdict == "TIMEOUT":
                output += "\nTimeout"  # AG2's words for a timeout, on a line of their own
            words = self._in_words(result)
            if verdict == "POLICY_VIOLATION" and output.strip() == (result.get("message") or "").strip():
                output = ""  # a refusal's output is its reason, which the line below says
            if words:
                output += "\n[agentexec] " + words
            if verdict != "OK":
                unknown = None  # AG2 stops at the failing block: later ones are not looked at
        if unknown is not None:
            # AG2's answer for a block in a language it cannot run, after the blocks before it ran
            output += "\nunknown language " + unknown
            exit_code = 1
            result = dict(result, verdict="RUNTIME_ERROR")
        if notes:
            output = "".join("[agentexec] %s\n" % n for n in notes) + output
        return AgentexecCodeResult(exit_code=exit_code, output=output, code_file=code_file,
                                   verdict=result.get("verdict", "OK"), result=result)

    def _run(self, blocks, notes):
        if self._lost is not None:
            notes.append(self._lost)
            self._lost = None
        try:
            result = self.client.execute(blocks=blocks, sandbox_id=self._sandbox(), limits=self.limits,
                                         **self.executor_options)
        except AgentexecError as e:
            if e.status == 404:
                # the sandbox expired or was removed before this ran: say so, and run in a fresh one
                gone = self._sandbox_id
                self._sandbox_id = None
                notes.append(self._lost_words("sandbox %s no longer exists (expired idle or removed)" % gone))
                result = self.client.execute(blocks=blocks, sandbox_id=self._sandbox(), limits=self.limits,
                                             **self.executor_options)
            elif e.status in (400, 413):
                # something in the blocks themselves; the model can fix it, the chat goes on
                return {"verdict": "POLICY_VIOLATION", "exitCode": 1, "output": "", "message": e.message,
                        "refused": True}
            else:
                raise
        if result.get("note"):
            # the cluster ran it in a fresh sandbox because the old one was reaped idle
            why = re.search(r"lost \((.*)\); this ran", result["note"])
            notes.append(self._lost_words(why.group(1) if why else result["note"]))
        if result.get("verdict") == "SANDBOX_ERROR":
            self._give_up("the sandbox failed: %s" % result.get("message", ""))
        return result

    def _sandbox(self):
        if self._sandbox_id is None:
            try:
                created = self.client.create_sandbox(self.sandbox_language, limits=self.limits, profile=self.profile,
                                                     image=self.image)
            except AgentexecError as e:
                if not (self.image == DEFAULT_IMAGE and e.status == 400 and "image" in e.message):
                    raise
                # a server that does not allow the polyglot image yet: the language's own image still runs its
                # blocks (others answer that their interpreter is missing)
                warnings.warn("agentexec: %s; using the server's %s image instead (allow %s in "
                              "agentexec.policy.allowed-images to share one workspace between languages)"
                              % (e.message, self.sandbox_language, DEFAULT_IMAGE))
                self.image = None
                created = self.client.create_sandbox(self.sandbox_language, limits=self.limits, profile=self.profile)
            self._sandbox_id = created["id"]
        return self._sandbox_id

    def _give_up(self, why):
        """Forgets a sandbox that cannot run any more; the next run starts a fresh one and says why."""
        sandbox_id, self._sandbox_id = self._sandbox_id, None
        self._lost = self._lost_words(why)
        if sandbox_id is not None:
            try:
                self.client.delete_sandbox(sandbox_id)
            except AgentexecError:
                pass  # already gone; nothing else holds it

    @staticmethod
    def _lost_words(why):
        return ("the workspace was lost (%s): files written in earlier turns are gone; this ran in a fresh sandbox"
                % why.rstrip("."))

    def _known_languages(self):
        """Language names and aliases the gateway runs, lower case, each with its file extension."""
        if self._languages is None:
            try:
                table = self.client.languages()
            except (AgentexecError, OSError, ValueError, KeyError):
                table = [{"name": n, "aliases": a, "extension": e} for n, (e, a) in _BUILTIN_LANGUAGES.items()]
            known = {}
            for entry in table:
                name = entry["name"].lower()
                extension = entry.get("extension") or _BUILTIN_LANGUAGES.get(name, (name,))[0]
                for alias in [name] + [a.lower() for a in entry.get("aliases", [])]:
                    known[alias] = extension
            self._languages = known
        return self._languages

    @staticmethod
    def _file_name(language, code, known):
        """The workspace file the engine saved a block as: its `# filename:` line, else tmp_code_MD5.EXT."""
        first = code.split("\n", 1)[0].replace("\r", "")
        named = _FILENAME_DIRECTIVE.match(first)
        if named:
            return named.group(1)
        return "tmp_code_%s.%s" % (hashlib.md5(code.encode("utf-8")).hexdigest(), known[language])

    def _in_words(self, result):
        """One line that says why a run did not succeed, for the model to read; None for OK and plain failures."""
        verdict = result.get("verdict")
        message = result.get("message") or ""
        if verdict == "TIMEOUT":
            ms = _number(r"after (\d+) ms", message)
            seconds = ms / 1000.0 if ms is not None else float(self.limits["timeoutSeconds"])
            return "timed out after %s s: the run was stopped and every process it started was killed" % _num(seconds)
        if verdict == "MEMORY_LIMIT":
            limit = _number(r"exceeding (\d+) bytes", message)
            amount = "%s MB" % _num(limit / _MB) if limit is not None else "its memory limit"
            return "killed for exceeding %s of memory (exit code %s)" % (amount, result.get("exitCode"))
        if verdict == "OUTPUT_LIMIT":
            limit = _number(r"exceeded (\d+) bytes", message)
            cap = "%d bytes" % limit if limit is not None else "the output limit"
            return ("output cut at %s (stdout and stderr each); the run was killed for printing more (exit code %s)"
                    % (cap, result.get("exitCode")))
        if result.get("refused"):
            return "refused by the gateway: %s" % message
        if verdict == "POLICY_VIOLATION":
            return "refused by policy: %s" % (message or "no reason given")
        if verdict == "SANDBOX_ERROR":
            return "the sandbox failed (%s); the next run starts in a fresh one" % (message or "no reason given")
        if verdict == "CANCELLED":
            return "cancelled: %s" % (message or "the run was stopped")
        if verdict == "RUNTIME_ERROR" and message.startswith("cannot start"):
            image = self.image or "the %s image" % self.sandbox_language
            return "interpreter missing: %s (image %s)" % (message, image)
        return None


def _number(pattern, text):
    found = re.search(pattern, text)
    return int(found.group(1)) if found else None


def _num(value):
    return ("%.1f" % value).rstrip("0").rstrip(".")
