"""A thin HTTP client of the agentexec gateway (see modules/gateway/src/main/resources/openapi.yaml)."""

import json
import urllib.error
import urllib.parse
import urllib.request


class AgentexecError(Exception):
    """The gateway refused a request: ``status`` (HTTP), ``code`` (stable, e.g. invalid_request) and a message."""

    def __init__(self, status, code, message, retry_after=None):
        super().__init__("%s %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class AgentexecClient:
    """Calls the gateway's HTTP API. ``timeout`` is the socket timeout in seconds for each call."""

    def __init__(self, url, api_key=None, timeout=300.0):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    # -- executions

    def execute(self, language=None, code=None, blocks=None, stdin=None, files=None, limits=None,
                sandbox_id=None, profile=None, image=None, policy=None, retries=None, cache=None, tests=None,
                executor=None):
        """Runs code and returns the result as a dict (verdict, exitCode, stdout, stderr, output, ...).

        ``blocks`` is a list of (language, code) pairs run in order (stopping at the first failure), instead of
        ``language`` and ``code``. ``files`` maps workspace paths to str or bytes.

        The seed's executors (AG2 chapter 4): ``profile`` ("simple", "medium", "complex", "datascience", ...; a value
        above the server's ceiling is held there and the result's ``notes`` say so), ``policy`` ("secure" or a list of
        forbidden patterns: POLICY_VIOLATION naming the rule), ``retries`` (the most attempts of a failing run; the
        result's ``attempts`` lists them), ``cache`` (True: an identical request answers from the tenant's cache,
        ``cached`` True and "[CACHED RESULT]" before the output), ``tests`` (a list of (stdin, expected_stdout) pairs,
        one run each, or of the seed's assertion strings; the result's ``tests`` reports PASS/FAIL per case) and
        ``executor`` (the name the runs are counted under in :meth:`stats`).
        """
        body = {}
        if blocks is not None:
            body["blocks"] = [{"language": lang, "code": src} for lang, src in blocks]
        else:
            body["language"] = language
            body["code"] = code
        if stdin is not None:
            body["stdin"] = stdin
        if files:
            import base64
            body["files"] = [{"path": path, "content": base64.b64encode(
                data.encode("utf-8") if isinstance(data, str) else data).decode("ascii"), "encoding": "base64"}
                for path, data in files.items()]
        if limits:
            body["limits"] = limits
        if profile:
            body["profile"] = profile
        if image:
            body["image"] = image
        _executor_fields(body, policy, retries, cache, executor)
        if tests is not None:
            body["tests"] = [t if isinstance(t, str) else {"stdin": t[0], "expectedStdout": t[1]} for t in tests]
        path = "/v1/sandboxes/%s/executions" % urllib.parse.quote(sandbox_id, safe="") if sandbox_id else "/v1/executions"
        return self._json("POST", path, body)

    def get_execution(self, execution_id):
        return self._json("GET", "/v1/executions/" + urllib.parse.quote(execution_id, safe=""))

    # -- sandboxes

    def create_sandbox(self, language, limits=None, profile=None, image=None, policy=None, retries=None, cache=None,
                       executor=None):
        """Creates a sandbox whose workspace lasts until it is deleted (or expires idle); ``image`` must be one the
        server allows (the languages' own images, ``agentexec.policy.allowed-images``). ``policy``, ``retries``,
        ``cache`` and ``executor`` (as in :meth:`execute`) become the defaults of every run in it: a run's own
        options win, one by one; the answer's ``defaults`` lists them."""
        body = {"language": language}
        if limits:
            body["limits"] = limits
        if profile:
            body["profile"] = profile
        if image:
            body["image"] = image
        _executor_fields(body, policy, retries, cache, executor)
        return self._json("POST", "/v1/sandboxes", body)

    def get_sandbox(self, sandbox_id):
        """The sandbox's id, language, status (active, broken, expired, closed) and the executor ``defaults`` of its
        runs."""
        return self._json("GET", "/v1/sandboxes/" + urllib.parse.quote(sandbox_id, safe=""))

    def delete_sandbox(self, sandbox_id):
        return self._json("DELETE", "/v1/sandboxes/" + urllib.parse.quote(sandbox_id, safe=""))

    def put_file(self, sandbox_id, path, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        return self._request("PUT", self._file_path(sandbox_id, path), data, "application/octet-stream", parse=True)

    def get_file(self, sandbox_id, path):
        return self._request("GET", self._file_path(sandbox_id, path), None, None, parse=False)

    @staticmethod
    def _file_path(sandbox_id, path):
        return "/v1/sandboxes/%s/files/%s" % (urllib.parse.quote(sandbox_id, safe=""), urllib.parse.quote(path, safe="/"))

    def languages(self):
        return self._json("GET", "/v1/languages")["languages"]

    def stats(self, executor=None):
        """The tenant's execution statistics (the seed's execution_stats): ``overall``, ``byExecutor``, ``byProfile``,
        each with count, successRate, p50Ms, p95Ms, timeouts and the limits the runs had."""
        query = "?executor=" + urllib.parse.quote(executor, safe="") if executor else ""
        return self._json("GET", "/v1/stats" + query)

    # -- transport

    def _json(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        return self._request(method, path, data, "application/json" if data is not None else None, parse=True)

    def _request(self, method, path, data, content_type, parse):
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if content_type:
            request.add_header("Content-Type", content_type)
        if self.api_key:
            request.add_header("Authorization", "Bearer " + self.api_key)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                error = json.loads(raw.decode("utf-8"))["error"]
                code, message = error.get("code", "error"), error.get("message", "")
            except (ValueError, KeyError, TypeError):
                code, message = "error", raw.decode("utf-8", "replace")[:200]
            raise AgentexecError(e.code, code, message, e.headers.get("Retry-After")) from None
        if not parse:
            return raw
        # a synchronous execution's body may start with heartbeat spaces; json.loads skips them
        document = json.loads(raw.decode("utf-8"))
        if isinstance(document, dict) and "error" in document and "verdict" not in document:
            error = document["error"]
            raise AgentexecError(200, error.get("code", "error"), error.get("message", ""))
        return document


def _executor_fields(body, policy, retries, cache, executor):
    """The seed's executors' fields, the same for an execution and a sandbox (its runs' defaults)."""
    if policy is not None:
        body["policy"] = policy if isinstance(policy, str) else list(policy)
    if retries is not None:
        body["retries"] = retries
    if cache is not None:
        body["cache"] = bool(cache)
    if executor is not None:
        body["executor"] = executor
