# agentexec's pre-initialised Python ("zygote"): blocks run in a fork of an interpreter whose start-up is done.
#
# agentexec-agent starts the language's command with `-c LOADER` in place of the block's file (`python3 -u -c
# LOADER`), fd 0 on /dev/null, fds 1 and 2 on a pipe it watches (a start-up that prints anything is one a fork
# cannot reproduce: no zygote then), fd 3 a SOCK_SEQPACKET socket to the agent. LOADER reads this file from fd 3
# and runs it in the -c namespace:
#
#   import os;exec(os.read(3,1<<20));_agentexec_exit(_agentexec_run(*_agentexec_args))
#
# In the zygote the exec never returns: it serves fork requests until the agent goes away. In a block's process it
# returns once the process is set up as `python3 -u FILE` would be, and LOADER then calls _agentexec_run, which is
# CPython's own PyRun_SimpleFileExFlags (what `python3 FILE` runs the script with: __main__, __file__, the
# traceback printing, SystemExit), called through ctypes so that no Python frame of ours runs the script, and
# _agentexec_exit, which ends the process as the interpreter's main() would after a script.
#
# Messages on fd 3 (first byte, then text): to the agent  Z ready, N no zygote (why; the process then exits),
# R a block's process is ready (its pid and the fds the agent opens through /proc/PID/fd), K it took its block
# and runs it, D it declines it (why; a plain start must run the block), E a fork failed. From the agent: F fork
# a process for a block (the agent's pid). The block itself (working directory, index of the script in argv, argv;
# NUL-separated) reaches that process through one of its pipes, which the agent opened.
#
# The zygote imports nothing the user could see: sys, os, io and _signal are loaded by every start-up; ctypes (for
# prctl and the run function) is imported and then taken out of sys.modules again, as are the path importer cache
# entries its import made. Supported versions are filled in by the engine (language setting zygote.versions).


def _agentexec_zygote(supported):
    import sys, os, _signal
    ctl = 3
    pr_set_dumpable = 4

    def tell(kind, text=""):
        os.write(ctl, kind + text.encode("utf-8", "replace")[:1000])

    def refuse(why):
        tell(b"N", why)
        os._exit(0)

    # -c put the working directory first on sys.path; nothing may be imported from there (a block's files).
    if sys.path and sys.path[0] == "":
        del sys.path[0]
    version = "%d.%d" % sys.version_info[:2]
    if sys.implementation.name != "cpython" or version not in supported:
        refuse("%s %s is not one whose parity the zygote was tested for (%s)"
               % (sys.implementation.name, sys.version.split()[0], ", ".join(supported)))
    tracemalloc = sys.modules.get("_tracemalloc")
    if tracemalloc is not None and tracemalloc.is_tracing():
        refuse("tracemalloc is on: a fork would carry the zygote's traces")
    if not hasattr(os, "fork") or not hasattr(_signal, "pthread_sigmask"):
        refuse("this Python cannot fork or mask signals")

    modules = set(sys.modules)
    importers = set(sys.path_importer_cache)
    try:
        # _ctypes (the C part of ctypes) only: ctypes' Python package would stay alive with its classes.
        import _ctypes, gc
        rtld_now = 2

        class c_int(_ctypes._SimpleCData):
            _type_ = "i"

        class c_ulong(_ctypes._SimpleCData):
            _type_ = "L"

        class c_void_p(_ctypes._SimpleCData):
            _type_ = "P"

        class c_char_p(_ctypes._SimpleCData):
            _type_ = "z"

        class c_function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = c_int

        class python_function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI
            _restype_ = c_int

        namespace = type(sys.implementation)
        program = namespace(_handle=_ctypes.dlopen(None, rtld_now))  # this executable: libc and CPython's API

        def function(kind, name, restype, argtypes):
            f = kind((name, program))
            f.restype, f.argtypes = restype, argtypes
            return f

        prctl = function(c_function, "prctl", c_int, (c_int, c_ulong, c_ulong, c_ulong, c_ulong))
        fopen = function(c_function, "fopen", c_void_p, (c_char_p, c_char_p))
        run_file = function(python_function, "PyRun_SimpleFileExFlags", c_int, (c_void_p, c_char_p, c_int, c_void_p))
        get_state = function(python_function, "PyThreadState_Get", c_void_p, ())
        madvise = function(c_function, "madvise", c_int, (c_void_p, c_ulong, c_int))
        get_errno = _ctypes.get_errno
        frames = _agentexec_frames(sys, c_int, c_void_p, get_state)
    except Exception as e:
        refuse("ctypes is unavailable: %r" % (e,))
    finally:
        for name in set(sys.modules) - modules:
            del sys.modules[name]
        for path in set(sys.path_importer_cache) - importers:
            del sys.path_importer_cache[path]
    gc.collect()
    if frames is None:
        refuse("this interpreter's thread state is not laid out as the zygote expects")
    # Same-uid code of a block must not ptrace this process, read its memory or open its fds (/proc/PID/...):
    # not dumpable, except for the moment of a fork (its children must be dumpable, as a plain start is).
    if prctl(pr_set_dumpable, 0, 0, 0, 0) != 0:
        refuse("prctl(PR_SET_DUMPABLE) failed: errno %d" % get_errno())
    # Every signal blocked but SIGCHLD (whose default is to discard it): one sent by a block's code stays
    # pending, where the agent sees it and replaces this zygote; it is never delivered to a fork.
    start_mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, [])
    _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals() - {_signal.SIGCHLD})

    # What start-up read that a block may change: the directories on sys.path and the user site directory
    # (.pth files, sitecustomize, usercustomize), with the entries of those the sandbox's user can write. A fork
    # whose start-up inputs differ from the zygote's declines, and the block gets a plain start.
    site = sys.modules.get("site")
    watched = [p for p in sys.path if isinstance(p, str)]
    if site is not None and getattr(site, "ENABLE_USER_SITE", False) and isinstance(getattr(site, "USER_SITE", None), str):
        watched.append(site.USER_SITE)

    def start_up_inputs():
        seen = []
        for d in watched:
            try:
                st = os.stat(d)
            except OSError as e:
                seen.append((d, e.errno))
                continue
            seen.append((d, st.st_dev, st.st_ino, st.st_mode, st.st_mtime_ns, st.st_ctime_ns))
            if os.path.isdir(d) and os.access(d, os.W_OK):
                try:
                    names = sorted(os.listdir(d))
                except OSError as e:
                    seen.append((d, "listdir", e.errno))
                    continue
                for n in names:
                    try:
                        s = os.lstat(os.path.join(d, n))
                        seen.append((n, s.st_ino, s.st_mode, s.st_size, s.st_mtime_ns, s.st_ctime_ns))
                    except OSError as e:
                        seen.append((n, e.errno))
        return seen

    inputs = start_up_inputs()
    madv_populate_write = 23
    page = os.sysconf("SC_PAGE_SIZE")

    def copy_ahead():
        # A forked process shares this interpreter's pages copy-on-write, and its run and its exit (reference
        # counts, the collector's headers, module teardown) write to most of them: a fault per page, each a trip
        # through the kernel, and where the kernel is a guest that shadows page tables (PVM), through the
        # hypervisor too (12-20 us a page there; a forked block's exit then cost more than a whole plain start).
        # MADV_POPULATE_WRITE (Linux 5.14) makes the private copies of a range in one call, without the faults:
        # here of the pages this process has (the zygote's, /proc/self/pagemap's present bit), not of the untouched
        # rest of its mappings, which a plain start would not have either. It runs in the block's process before
        # its block arrives (a spare forked after the last run: off the next block's path; a process forked for a
        # block already waiting does it too, one call per run of pages costing less than the faults it replaces:
        # ~6.5 ms against 777 faults of 12-20 us on the PVM guest). Where it is refused (an
        # older kernel, gVisor) the pages are copied on first write, as before: nothing a block observes depends on
        # it but its resident memory, which a plain start has too (the same interpreter's pages, written by its
        # own start-up).
        def read_all(path):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                data = b""
                while True:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        return data
                    data += chunk
            finally:
                os.close(fd)

        try:
            maps = read_all("/proc/self/maps")
            pagemap = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            for line in maps.split(b"\n"):
                fields = line.split()
                # Private and writable only (a shared mapping has no copy to make); not [vvar], [vdso], [vsyscall].
                if len(fields) < 5 or fields[1][1:2] != b"w" or fields[1][3:4] != b"p":
                    continue
                if len(fields) > 5 and fields[5].startswith(b"[v"):
                    continue
                start, end = (int(x, 16) for x in fields[0].split(b"-"))
                try:
                    entries = os.pread(pagemap, (end - start) // page * 8, start // page * 8)
                except OSError:
                    continue
                run = None
                for i in range(0, len(entries), 8):
                    present = entries[i + 7] & 0x80
                    if present and run is None:
                        run = start + i // 8 * page
                    elif not present and run is not None:
                        madvise(run, start + i // 8 * page - run, madv_populate_write)
                        run = None
                if run is not None:
                    madvise(run, start + len(entries) // 8 * page - run, madv_populate_write)
        finally:
            os.close(pagemap)

    tools = (prctl, fopen, run_file, get_errno, start_mask, inputs, start_up_inputs, frames, copy_ahead, tell)
    tell(b"Z", "%s %s" % (sys.implementation.name, sys.version.split()[0]))
    while True:
        msg = os.read(ctl, 65536)
        if not msg:
            os._exit(0)  # the agent is gone
        if msg[:1] != b"F":
            continue
        adopted_r, adopted_w = os.pipe()
        prctl(pr_set_dumpable, 1, 0, 0, 0)
        try:
            middle = os.fork()
        except OSError as e:
            prctl(pr_set_dumpable, 0, 0, 0, 0)
            os.close(adopted_r)
            os.close(adopted_w)
            tell(b"E", "fork failed: %s" % e)
            continue
        if middle == 0:
            # The intermediate process: forks the block's process and exits, so that the block's process is
            # adopted by the agent (the pid namespace's init, or its subreaper), whose child it must be, as a
            # plain start is: getppid(), the exit status and the resource usage the agent reads with wait4().
            try:
                if os.fork() == 0:
                    return msg, adopted_r, adopted_w, tools
            except OSError as e:
                tell(b"E", "fork failed: %s" % e)
            os._exit(0)
        os.close(adopted_r)
        os.waitpid(middle, 0)
        prctl(pr_set_dumpable, 0, 0, 0, 0)
        # Only now, with the intermediate process reaped (so the block's process has been adopted) and this process
        # not dumpable again, may the block's process go on: it waits for this end to close.
        os.close(adopted_w)


def _agentexec_block(msg, adopted_r, adopted_w, tools):
    import os
    tell = tools[-1]
    os.close(adopted_w)
    while os.read(adopted_r, 1):
        pass
    os.close(adopted_r)

    def decline(why):
        tell(b"D", why)
        os._exit(0)

    try:
        ready = _agentexec_prepare(msg, tools, decline)
    except BaseException as e:  # a bug of ours, or an interpreter we do not know: the block gets a plain start
        decline("the zygote's child failed: %r" % (e,))
    tell(b"K")
    return _agentexec_become(tools, *ready)


def _agentexec_prepare(msg, tools, decline):
    import sys, os
    prctl, fopen, run_file, get_errno, start_mask, inputs, start_up_inputs, frames, copy_ahead, tell = tools
    agent = int(msg[1:])
    if os.getppid() != agent:
        decline("the block's process was not adopted by the agent (parent %d)" % os.getppid())
    os.setsid()
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    block_r, block_w = os.pipe()
    # Ready: the agent opens the other ends of these pipes through /proc/PID/fd, then sends the block (possibly much
    # later: this process may be forked ahead, after the previous block), or kills this process.
    tell(b"R", "%d %d %d %d %d" % (os.getpid(), stdin_w, stdout_r, stderr_r, block_w))
    copy_ahead()
    # The block: its length on a line, then the block (this process keeps its own write end until then: the agent
    # opens it through /proc/PID/fd).
    request = b""
    while b"\n" not in request or len(request) < request.index(b"\n") + 1 + int(request[:request.index(b"\n")]):
        chunk = os.read(block_r, 65536)
        if not chunk:
            os._exit(0)
        request += chunk
    os.close(block_w)
    os.close(block_r)
    fields = request[request.index(b"\n") + 1:].split(b"\0")
    cwd, script_index, argv = fields[0], int(fields[1]), [os.fsdecode(a) for a in fields[2:]]
    if start_up_inputs() != inputs:
        decline("the files Python reads at start-up changed since the zygote started")
    script_argv = argv[script_index:]
    os.chdir(cwd)

    # What Modules/main.c does with `python3 FILE` before running it, in its order: the file's absolute name
    # (config_run_filename_abspath), a path importer for it (a zip or a directory runs its __main__: declined),
    # then sys.path[0] (_PyPathConfig_ComputeSysPath0), unless -P / PYTHONSAFEPATH.
    filename = script_argv[0]
    if filename.startswith("/"):
        absolute = filename
    elif filename in ("", "."):
        absolute = os.getcwd()
    else:
        absolute = os.getcwd() + "/" + filename
    cache = sys.path_importer_cache
    if absolute not in cache:
        cache[absolute] = None
        for hook in sys.path_hooks:
            try:
                importer = hook(absolute)
            except ImportError:
                continue
            cache[absolute] = importer
            break
    if cache[absolute] is not None:
        decline("the script is a package or an archive")
    try:
        os.close(os.open(absolute, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as e:
        decline("cannot open the script: %s" % e)
    path0 = None
    if not getattr(sys.flags, "safe_path", False):
        path0 = filename
        try:
            link = os.readlink(path0)
        except OSError:
            link = ""
        if link:
            if link.startswith("/"):
                path0 = link
            elif "/" in link:
                q = path0.rfind("/")
                path0 = link if q < 0 else path0[:q + 1] + link
        try:
            path0 = os.path.realpath(path0, strict=True)
        except (OSError, TypeError):
            pass
        q = path0.rfind("/")
        path0 = "" if q < 0 else path0[:q] if q > 0 else "/"
    return argv, script_argv, absolute, path0, stdin_r, stdout_w, stderr_w


def _agentexec_become(tools, argv, script_argv, absolute, path0, stdin_r, stdout_w, stderr_w):
    import sys, os, io, _signal
    prctl, fopen, run_file, get_errno, start_mask, inputs, start_up_inputs, frames, copy_ahead, tell = tools
    # From here on this process is the block's. Its fds become exactly those of a plain start: 0, 1, 2.
    buffered = not sys.__stdout__.write_through
    encoding = (sys.__stdin__.encoding, sys.__stdout__.encoding, sys.__stderr__.encoding)
    errors = (sys.__stdin__.errors, sys.__stdout__.errors, sys.__stderr__.errors)
    for old in (sys.__stdin__, sys.__stdout__, sys.__stderr__):
        old.close()  # opened with closefd=False: the fds stay; nothing was ever written to them
    os.dup2(stdin_r, 0)
    os.dup2(stdout_w, 1)
    os.dup2(stderr_w, 2)
    os.closerange(3, 1 << 30)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, start_mask)

    # The standard streams as Python/pylifecycle.c's create_stdio makes them.
    def stdio(fd, write, name):
        buffering = 0 if (write and not buffered) else -1
        buf = io.open(fd, "wb" if write else "rb", buffering, None, None, None, False)
        raw = buf.raw if buffering else buf
        raw.name = name
        line_buffering = buffered and (raw.isatty() or fd == 2)
        stream = io.TextIOWrapper(buf, encoding[fd], errors[fd], "\n", line_buffering, not buffered)
        stream.mode = "w" if write else "r"
        return stream

    sys.stdin = sys.__stdin__ = stdio(0, False, "<stdin>")
    sys.stdout = sys.__stdout__ = stdio(1, True, "<stdout>")
    sys.stderr = sys.__stderr__ = stdio(2, True, "<stderr>")
    sys.argv = script_argv
    if hasattr(sys, "orig_argv"):
        sys.orig_argv = argv
    if path0 is not None:
        sys.path.insert(0, path0)
    # A __main__ module as Python/pylifecycle.c's add_main_module makes it; PyRun_SimpleFileExFlags adds
    # __file__, __cached__ and the SourceFileLoader.
    main = type(sys)("__main__")
    main.__dict__["__annotations__"] = {}
    main.__dict__["__builtins__"] = sys.modules["builtins"]
    main.__dict__["__loader__"] = sys.modules["_frozen_importlib"].BuiltinImporter
    sys.modules["__main__"] = main

    fp = fopen(os.fsencode(absolute), b"rb")
    if not fp:
        # Modules/main.c's message and status for a script it cannot open (not expected: it was opened above).
        e = get_errno()
        sys.stderr.write("%s: can't open file %r: [Errno %d] %s\n" % (argv[0], absolute, e, os.strerror(e)))
        sys.stderr.flush()
        os._exit(2)
    # Last: the script runs with no frame of ours under it, at the recursion depth of a plain start.
    frames.hide_command()
    return run_file, (fp, os.fsencode(absolute), 1, None), frames.restore_depth


def _agentexec_frames(sys, c_int, c_void_p, get_state):
    """
    Where CPython 3.11 keeps the current frame and the recursion count (Include/cpython/pystate.h: PyThreadState's
    recursion_remaining at 32, recursion_limit at 36, cframe at 56; _PyCFrame's current_frame at 8, previous at 16;
    _PyInterpreterFrame's f_globals at 8, f_code at 32). `python3 FILE` runs the script with no frame under it; here
    the -c command's frame is under it and the call into PyRun_SimpleFileExFlags counts one level of recursion.
    hide_command takes both away: sys._getframe().f_back is None at the script's top level, tracebacks of
    traceback.print_stack(), warnings' stacklevel and RecursionError's depth are a plain start's. None when this
    interpreter is not laid out so (checked here, on a frame whose code and globals are known).
    """
    if sys.version_info[:2] != (3, 11):
        return None
    ts_remaining, ts_limit, ts_cframe = 32, 36, 56
    cf_current, cf_previous = 8, 16
    if_globals, if_code = 8, 32

    def ptr(address):
        return c_void_p.from_address(address).value or 0

    def current_is(frame, cframe):
        # Whether FRAME is the one CFRAME runs now. For the running evaluation's own _PyCFrame that is the frame
        # reading it, this function's (FRAME None).
        frame = frame or sys._getframe()
        current = c_void_p.from_address(cframe + cf_current).value or 0
        return bool(current) and (c_void_p.from_address(current + if_code).value == id(frame.f_code)
                                  and c_void_p.from_address(current + if_globals).value == id(frame.f_globals))

    state = get_state()
    if not state or c_int.from_address(state + ts_limit).value != sys.getrecursionlimit():
        return None
    if not current_is(None, ptr(state + ts_cframe)):
        return None

    class Frames:
        hidden = False

        @staticmethod
        def hide_command():
            # The -c command runs in the outermost C-level evaluation (this file runs in others, under its exec):
            # that evaluation's current frame, which the script's frame would get as its f_back, becomes NULL. It
            # is set again when the command calls its next Python function (_agentexec_exit), after the script.
            state = get_state()
            command = sys._getframe()
            while command.f_back is not None:
                command = command.f_back
            cframe = ptr(state + ts_cframe)
            while cframe and not current_is(command, cframe):
                cframe = ptr(cframe + cf_previous)
            if cframe:
                c_void_p.from_address(cframe + cf_current).value = None
                c_int.from_address(state + ts_remaining).value += 2
                Frames.hidden = True

        @staticmethod
        def restore_depth():
            # After the script, back in the -c command: the two levels given above are taken back, so that
            # finalisation (atexit, threading) runs at a plain start's depth too.
            if Frames.hidden:
                c_int.from_address(get_state() + ts_remaining).value -= 2

    return Frames


def _agentexec_exit(status):
    # After a script, Modules/main.c exits with 0, or 1 when it raised (its traceback is printed by then), after the
    # interpreter's normal finalisation (threads joined, atexit, and death by SIGINT after an unhandled
    # KeyboardInterrupt). Raising out of the -c command gets the same; the exception is not printed and leaves
    # sys.last_* and sys.excepthook as the script's error left them.
    import sys
    _agentexec_depth()
    if status == 0:
        return
    names = ("last_type", "last_value", "last_traceback", "last_exc", "excepthook")
    missing = object()
    saved = {n: getattr(sys, n, missing) for n in names}

    def quiet(*_):
        for n, v in saved.items():
            if v is not missing:
                setattr(sys, n, v)
            elif hasattr(sys, n):
                delattr(sys, n)

    sys.excepthook = quiet
    raise SystemError("agentexec: the script failed")


_agentexec_run, _agentexec_args, _agentexec_depth = _agentexec_block(*_agentexec_zygote(SUPPORTED_VERSIONS))
