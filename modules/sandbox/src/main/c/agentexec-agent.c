/*
 * agentexec-agent: the small supervisor that lives inside every sandbox.
 *
 * It is started once per sandbox session (as the container's main process, or inside bwrap) and
 * receives each code block over its stdin as a framed request, so that a block costs a fork+exec
 * rather than a `docker exec`. The user's process gets fresh pipes, never the agent's own stdout,
 * so nothing it prints can forge a frame. Static, no dependencies: it must run in any image.
 *
 * Frames, both directions: u8 type, u32 big-endian payload length, payload.
 *   in : 'P' ping | 'R' run | 'W' write file | 'G' get file | 'C' cancel the run (no reply)
 *        | 'S' scrub the sandbox for another one-off of the same owner (see handle_scrub)
 *        A 'W' whose mode has WRITE_THEN_RUN set is a block's file sent together with the 'R' that runs it (one
 *        round trip through the container runtime instead of two): when that write is refused, the request after
 *        it is refused too (an error frame, nothing started), so a block never runs whatever its file held before.
 *   out: 'h' hello | 'k' ok | 'r' error(text) | 'o' stdout chunk | 'e' stderr chunk
 *        'f' file changed by the run | 'z' how the run started, when not in a zygote it asked for (text, at most
 *        one per run, before its 'x') | 'x' exit status | 'd' file data
 *
 * The agent is not dumpable, so code of the same uid can neither ptrace it nor open its fds through
 * /proc/PID/fd (which would let it write frames to the controller). It must therefore be the only
 * process of the sandbox that holds the controller's pipes: pid 1 of a container, or of bwrap with
 * --as-pid-1 (bwrap's own init would be dumpable and hold them too).
 *
 * Modes:
 *   agent serve [--contained] [--seccomp] [--workspace DIR]
 *       --contained: the agent is alone in its own pid namespace (pid 1 or 2), so ending a run may
 *       kill(-1): every process that the run left, however it detached (setsid, double fork). A
 *       contained agent never runs code as uid 0 or gid 0: such runs are refused with an error frame.
 *       Without it (the unsafe-local backend) only the run's process group can be killed.
 *       --seccomp: before serving, install a seccomp filter (Docker's default profile as a denylist,
 *       see install_seccomp) on the agent itself, so that it and every process it starts carry it.
 *   agent launch [--cgroup DIR]... [--limit RES=N]... [--self-fd TOKEN] [--user UID:GID] -- PROGRAM ARGS...
 *       Joins the given cgroups and sets rlimits, then execs PROGRAM (used to put bwrap into its
 *       cgroups before any of its processes exist). --self-fd opens this binary (/proc/self/exe) on an
 *       inheritable fd and replaces every argument TOKEN after -- with its number, so that PROGRAM can
 *       copy the agent without a path to it (the runtime directory is private to the JVM's user).
 *       --user drops to that unprivileged host uid and gid (no supplementary groups) last, after the
 *       cgroups were joined, so that the sandbox's user namespace maps onto it rather than onto root.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/xattr.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_VERSION "agentexec-agent 2"
#define MAX_FRAME (256u * 1024u * 1024u)
#define CHUNK 65536
#define MAX_TRACKED_FILES 4096
#define MAX_WALK_DEPTH 16

static int contained = 0;
static const char *workspace = ".";
static volatile sig_atomic_t child_event = 0;

/* ---------- frame output ---------- */

static void write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            _exit(3); /* the controller is gone: nothing left to report to */
        }
        p += n;
        len -= (size_t)n;
    }
}

static void put_u32(unsigned char *b, uint32_t v) {
    b[0] = v >> 24; b[1] = v >> 16; b[2] = v >> 8; b[3] = v;
}

static void put_u64(unsigned char *b, uint64_t v) {
    put_u32(b, (uint32_t)(v >> 32)); put_u32(b + 4, (uint32_t)v);
}

static void send_frame(char type, const void *payload, uint32_t len) {
    unsigned char h[5];
    h[0] = (unsigned char)type;
    put_u32(h + 1, len);
    write_all(STDOUT_FILENO, h, 5);
    if (len) write_all(STDOUT_FILENO, payload, len);
}

static void send_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void send_error(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n >= (int)sizeof msg) n = sizeof msg - 1;
    send_frame('r', msg, (uint32_t)n);
}

/* ---------- frame input ---------- */

static int read_full(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

typedef struct {
    const unsigned char *p;
    size_t left;
    int bad;
} reader;

static uint32_t rd_u32(reader *r) {
    if (r->left < 4) { r->bad = 1; return 0; }
    uint32_t v = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) | ((uint32_t)r->p[2] << 8) | r->p[3];
    r->p += 4; r->left -= 4;
    return v;
}

static uint64_t rd_u64(reader *r) {
    uint64_t hi = rd_u32(r);
    return (hi << 32) | rd_u32(r);
}

/* Returns a NUL-terminated copy; a string holding a NUL byte marks the request bad. */
static char *rd_str(reader *r, size_t *out_len) {
    uint32_t n = rd_u32(r);
    if (r->bad || r->left < n) { r->bad = 1; return NULL; }
    char *s = malloc((size_t)n + 1);
    if (!s) { r->bad = 1; return NULL; }
    memcpy(s, r->p, n);
    s[n] = 0;
    r->p += n; r->left -= n;
    if (out_len) *out_len = n;
    else if (memchr(s, 0, n)) { free(s); r->bad = 1; return NULL; }
    return s;
}

/* ---------- time, signals ---------- */

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_sigchld(int sig) { (void)sig; child_event = 1; }

/* ---------- workspace paths ---------- */

/* A path is acceptable when it is relative, has no empty, "." or ".." component and no NUL. */
static int safe_relative(const char *path) {
    if (!*path || path[0] == '/') return 0;
    const char *s = path;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
        if (!e) break;
        s = e + 1;
    }
    return 1;
}

/* Opens the parent directory of PATH below the workspace without following any symlink.
 * Creates missing directories when CREATE is set. Returns a dir fd and sets *leaf. */
static int open_parent(const char *path, int create, const char **leaf) {
    int dir = open(workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return -1;
    const char *s = path;
    for (;;) {
        const char *e = strchr(s, '/');
        if (!e) { *leaf = s; return dir; }
        char part[4096];
        size_t n = (size_t)(e - s);
        if (n >= sizeof part) { close(dir); errno = ENAMETOOLONG; return -1; }
        memcpy(part, s, n);
        part[n] = 0;
        if (create && mkdirat(dir, part, 0755) < 0 && errno != EEXIST) { close(dir); return -1; }
        int next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(dir);
        if (next < 0) return -1;
        dir = next;
        s = e + 1;
    }
}

/* The write's mode flag: its run request follows it (see the protocol above). */
#define WRITE_THEN_RUN 0x40000000u

/* Returns 0 when the file was written (and 'k' sent), -1 when refused (an error frame sent); *mode_out is the
 * request's mode, flags included (WRITE_THEN_RUN for a malformed request). */
static int handle_write(reader *r, uint32_t *mode_out) {
    int rc = -1;
    char *path = rd_str(r, NULL);
    size_t len = 0;
    char *data = rd_str(r, &len);
    uint32_t mode = rd_u32(r);
    *mode_out = r->bad ? WRITE_THEN_RUN : mode; /* malformed: whatever follows must not run on it */
    if (r->bad) { send_error("malformed write request"); goto out; }
    if (!safe_relative(path)) { send_error("path escapes the workspace: %s", path); goto out; }
    const char *leaf;
    int dir = open_parent(path, 1, &leaf);
    if (dir < 0) { send_error("cannot open parent of %s: %s", path, strerror(errno)); goto out; }
    /* Non-blocking and without O_TRUNC: a FIFO (or anything but a regular file) planted under this
     * name must neither stall the agent, which serves the whole session, nor be truncated. The type is
     * checked on the opened file itself, then the file is emptied. */
    struct stat st;
    int fd = openat(dir, leaf, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
    int open_errno = errno;
    close(dir);
    if (fd < 0) {
        if (open_errno == ELOOP) send_error("refusing to write through a symlink: %s", path);
        else if (open_errno == ENXIO) send_error("refusing to write %s: not a regular file", path);
        else send_error("cannot write %s: %s", path, strerror(open_errno));
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        send_error("refusing to write %s: not a regular file", path);
        close(fd);
        goto out;
    }
    if (ftruncate(fd, 0) < 0) {
        send_error("cannot truncate %s: %s", path, strerror(errno));
        close(fd);
        goto out;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            send_error("writing %s failed: %s", path, strerror(errno));
            close(fd);
            goto out;
        }
        off += (size_t)n;
    }
    close(fd);
    send_frame('k', NULL, 0);
    rc = 0;
out:
    free(path);
    free(data);
    return rc;
}

static void handle_get(reader *r) {
    char *path = rd_str(r, NULL);
    uint64_t max = rd_u64(r);
    if (r->bad) { send_error("malformed get request"); free(path); return; }
    if (!safe_relative(path)) { send_error("path escapes the workspace: %s", path); free(path); return; }
    const char *leaf;
    int dir = open_parent(path, 0, &leaf);
    /* Non-blocking: opening a FIFO for reading would otherwise wait for a writer forever. */
    int fd = dir < 0 ? -1 : openat(dir, leaf, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (dir >= 0) close(dir);
    struct stat st;
    if (fd < 0) {
        send_error("no such file: %s", path);
        free(path);
        return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        /* Worded as before for directories: controllers tell "no such file" apart by its prefix. */
        send_error("no such file: %s (not a regular file)", path);
        close(fd);
        free(path);
        return;
    }
    if ((uint64_t)st.st_size > max) {
        send_error("file too large: %s (%lld bytes)", path, (long long)st.st_size);
        close(fd);
        free(path);
        return;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    ssize_t got = buf ? 0 : -1;
    while (buf && got < (ssize_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - (size_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { got = -1; break; }
        if (n == 0) break; /* the file shrank meanwhile: send what there is */
        got += n;
    }
    close(fd);
    if (got < 0) send_error("reading %s failed", path);
    else send_frame('d', buf, (uint32_t)got);
    free(buf);
    free(path);
}

/* ---------- files changed by a run ---------- */

typedef struct {
    char *path;
    uint64_t size;
    uint64_t mtime_ns;
} file_entry;

typedef struct {
    file_entry *items;
    size_t count;
} file_list;

/* Takes ownership of DIRFD: every path out of here closes it. */
static void walk(file_list *list, int dirfd, const char *prefix, int depth) {
    if (depth > MAX_WALK_DEPTH) { close(dirfd); return; }
    DIR *d = fdopendir(dirfd);
    if (!d) { close(dirfd); return; }
    struct dirent *de;
    while ((de = readdir(d)) != NULL && list->count < MAX_TRACKED_FILES) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        char path[4096];
        int n = snprintf(path, sizeof path, "%s%s", prefix, de->d_name);
        if (n <= 0 || n >= (int)sizeof path) continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                char p2[4100];
                snprintf(p2, sizeof p2, "%s/", path);
                walk(list, sub, p2, depth + 1);
            }
        } else if (S_ISREG(st.st_mode)) {
            file_entry *grown = realloc(list->items, (list->count + 1) * sizeof *grown);
            if (!grown) break;
            list->items = grown;
            list->items[list->count].path = strdup(path);
            list->items[list->count].size = (uint64_t)st.st_size;
            list->items[list->count].mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
            list->count++;
        }
    }
    closedir(d);
}

static file_list snapshot(void) {
    file_list list = {0};
    int fd = open(workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) walk(&list, fd, "", 0);
    return list;
}

static void free_list(file_list *l) {
    for (size_t i = 0; i < l->count; i++) free(l->items[i].path);
    free(l->items);
}

static void report_changes(const file_list *before, const file_list *after) {
    for (size_t i = 0; i < after->count; i++) {
        const file_entry *a = &after->items[i];
        int changed = 1;
        for (size_t j = 0; j < before->count; j++) {
            const file_entry *b = &before->items[j];
            if (!strcmp(a->path, b->path)) {
                changed = a->size != b->size || a->mtime_ns != b->mtime_ns;
                break;
            }
        }
        if (!changed) continue;
        size_t plen = strlen(a->path);
        unsigned char *buf = malloc(plen + 8);
        if (!buf) continue;
        put_u64(buf, a->size);
        memcpy(buf + 8, a->path, plen);
        send_frame('f', buf, (uint32_t)(plen + 8));
        free(buf);
    }
}

/* ---------- memory accounting from the kernel's record ---------- */

/* The oom_kill counter of the sandbox's memory cgroup: exit 137 alone does not prove an OOM kill. */
static int64_t read_oom_kills(void) {
    static const char *files[] = {"/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        FILE *f = fopen(files[i], "re");
        if (!f) continue;
        char line[256];
        while (fgets(line, sizeof line, f)) {
            long long v;
            if (sscanf(line, "oom_kill %lld", &v) == 1) { fclose(f); return v; }
        }
        fclose(f);
    }
    return -1;
}

/* ---------- who we are ---------- */

/* Root in any of the ids, or group 0 among the supplementary groups: user code must never get those
 * inside a sandbox (a Docker --user that parses to 0, a bwrap mapping gone wrong). */
static int runs_as_root(void) {
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0) return 1;
    if (ru == 0 || eu == 0 || su == 0 || rg == 0 || eg == 0 || sg == 0) return 1;
    int n = getgroups(0, NULL);
    if (n < 0) return 1;
    if (n == 0) return 0;
    gid_t *groups = calloc((size_t)n, sizeof *groups);
    if (!groups) return 1;
    n = getgroups(n, groups);
    int root = n < 0;
    for (int i = 0; i < n; i++) if (groups[i] == 0) root = 1;
    free(groups);
    return root;
}

/* ---------- seccomp ---------- */

/*
 * Docker's default seccomp profile, written as a denylist for x86_64 (it is an allowlist there; these
 * are the syscalls it refuses to a container without capabilities, which is what a sandbox is), plus
 * io_uring (refused by Docker since 25.0). Everything else is allowed, as in Docker: ptrace and
 * process_vm_* included (the agent is not dumpable, so they only reach the run's own processes).
 * Refused calls fail with EPERM; clone3 with ENOSYS, so that libc falls back to clone, whose flags a
 * filter can see.
 */
static const int denied_syscalls[] = {
    /* file systems and namespaces */
    __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot, __NR_unshare, __NR_setns,
    __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick, __NR_move_mount, __NR_open_tree, __NR_mount_setattr,
    __NR_open_by_handle_at, __NR_name_to_handle_at, __NR_quotactl, __NR_quotactl_fd, __NR_acct,
    __NR_swapon, __NR_swapoff, __NR_sysfs, __NR__sysctl, __NR_ustat, __NR_uselib, __NR_nfsservctl,
    /* kernel keyrings, modules, kexec, reboot */
    __NR_keyctl, __NR_add_key, __NR_request_key,
    __NR_init_module, __NR_finit_module, __NR_delete_module, __NR_create_module, __NR_query_module,
    __NR_get_kernel_syms, __NR_kexec_load, __NR_kexec_file_load, __NR_reboot,
    /* tracing, bpf, fault handling, async I/O rings */
    __NR_bpf, __NR_perf_event_open, __NR_lookup_dcookie, __NR_userfaultfd, __NR_fanotify_init,
    __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register,
    /* the machine's clock, name, console, I/O ports, NUMA policy */
    __NR_settimeofday, __NR_clock_settime, __NR_clock_adjtime, __NR_sethostname, __NR_setdomainname,
    __NR_syslog, __NR_vhangup, __NR_iopl, __NR_ioperm,
    __NR_mbind, __NR_set_mempolicy, __NR_get_mempolicy, __NR_move_pages,
};

/* clone() with any namespace flag (clone's low byte is the exit signal, so CLONE_NEWTIME cannot appear). */
#define CLONE_NAMESPACE_FLAGS (0x00020000u /* NEWNS */ | 0x02000000u /* NEWCGROUP */ | 0x04000000u /* NEWUTS */ \
                               | 0x08000000u /* NEWIPC */ | 0x10000000u /* NEWUSER */ | 0x20000000u /* NEWPID */ \
                               | 0x40000000u /* NEWNET */)
#define X32_SYSCALL_BIT 0x40000000u
#define AF_VSOCK_FAMILY 40u /* vsock reaches the hypervisor's host, whatever the network namespace */

static int install_seccomp(void) {
    enum { MAX_INSNS = 256 };
    struct sock_filter f[MAX_INSNS];
    unsigned n = 0;
#define INSN(code, k) (f[n++] = (struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, jt, jf) (f[n++] = (struct sock_filter)BPF_JUMP((code), (k), (jt), (jf)))
    const uint32_t eperm = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
    const uint32_t enosys = SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA);
    const uint32_t arg0 = offsetof(struct seccomp_data, args[0]); /* low 32 bits on little-endian x86_64 */

    /* Foreign architectures (i386 through int 0x80) and the x32 ABI: refused outright. */
    INSN(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    INSN(BPF_RET | BPF_K, eperm);
    INSN(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1);
    INSN(BPF_RET | BPF_K, eperm);

    for (size_t i = 0; i < sizeof denied_syscalls / sizeof *denied_syscalls; i++) {
        JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)denied_syscalls[i], 0, 1);
        INSN(BPF_RET | BPF_K, eperm);
    }

    /* clone: only without namespace flags. */
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4);
    INSN(BPF_LD | BPF_W | BPF_ABS, arg0);
    JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NAMESPACE_FLAGS, 0, 1);
    INSN(BPF_RET | BPF_K, eperm);
    INSN(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
    INSN(BPF_RET | BPF_K, enosys);

    /* personality: only the values Docker allows (Linux, UNAME26, ADDR_NO_RANDOMIZE, both, query). */
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, 8);
    INSN(BPF_LD | BPF_W | BPF_ABS, arg0);
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0u, 5, 0);
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x8u, 4, 0);
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20000u, 3, 0);
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20008u, 2, 0);
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 1, 0);
    INSN(BPF_RET | BPF_K, eperm);
    INSN(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

    /* socket: no AF_VSOCK. */
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 4);
    INSN(BPF_LD | BPF_W | BPF_ABS, arg0);
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_VSOCK_FAMILY, 0, 1);
    INSN(BPF_RET | BPF_K, eperm);
    INSN(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

    INSN(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
#undef INSN
#undef JUMP
    if (n > MAX_INSNS) abort(); /* cannot happen: the table above is fixed */
    struct sock_fprog prog = {(unsigned short)n, f};
    /* Also required to install a filter without CAP_SYS_ADMIN; bwrap and Docker set it already. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* ---------- run ---------- */

enum { F_TIMEOUT = 1, F_STDOUT_TRUNC = 2, F_STDERR_TRUNC = 4, F_OUTPUT_LIMIT = 8, F_OOM = 16, F_SPAWN_FAILED = 32, F_CANCELLED = 64,
       F_ZYGOTE = 128 /* the block ran in a fork of a zygote */ };

/* Set when the controller closed our stdin during a run: finish the run's report, then exit. */
static int controller_gone = 0;

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* ---------- pre-initialised interpreters ("zygotes") ---------- */

/*
 * A run may ask for a zygote: the first `script` entries of its argv are an interpreter command (python3 -u) and
 * the rest the script and its arguments. The agent then keeps that interpreter started, with the request's
 * environment and working directory, its start-up done by a bootstrap the controller sends (for Python:
 * python-zygote.py), and runs a block in a fork of it: a block costs a fork, not an interpreter start.
 *
 *   - It is started after a run that asked for it, never during one: the first block of a session has a plain
 *     start, and the zygote's start-up overlaps the time until the next block. A run waits for a zygote still
 *     starting before any user code runs, so no user code ever sees one that is not yet locked down.
 *   - It is the agent's child, in a session of its own, with /dev/null as stdin, stdout and stderr on a pipe the
 *     agent watches (a start-up that prints cannot be reproduced by a fork: no zygote then), and one end of a
 *     SOCK_SEQPACKET socket as fd 3, which cannot be opened through /proc/PID/fd. It never holds the
 *     controller's pipes. It makes itself non-dumpable (no ptrace, no /proc/PID/{mem,fd,environ} for same-uid
 *     code) except for the moment of a fork, blocks every signal but SIGCHLD, and keeps nothing a block's code
 *     could reach.
 *   - A fork request gets a process that the zygote forks through an intermediate one, so that it is adopted by
 *     the agent (pid 1, or its subreaper): the agent is its parent as for a plain start (getppid, wait4's status
 *     and rusage). That process calls setsid, creates its stdin, stdout and stderr pipes and one more, and says it
 *     is ready; the agent opens their other ends through /proc/PID/fd (the process is dumpable, as a plain start
 *     is). For a block, the agent sets its rlimits with prlimit and writes it the block (directory, argv); it
 *     checks that it can run it as a plain start would (or declines: a plain start runs it), closes everything but
 *     0, 1 and 2, unblocks signals and runs the script as `python3 -u FILE` would (see python-zygote.py). The next
 *     block's process is forked right after a run (the spare), so that a block does not wait for the fork; it is
 *     killed before any run that does not take it.
 *   - Ending a run kills every process but the agent and the zygote, from /proc (kill(-1) would take the
 *     zygote too), then checks the zygote, now that nothing else can run: alive, not stopped or traced, no
 *     signal pending, rlimits, scheduling, CPU affinity, I/O priority as recorded when it started, nothing written
 *     to its output. A zygote found touched is killed too, and a new one is started after the run; after
 *     `max_restarts` such replacements in a row the session's blocks keep plain starts. Whatever goes wrong on
 *     the zygote path before the block's code runs, the block gets a plain start, and the run's note says why.
 */

#define ZYGOTE_CTL_FD 3
#define ZYGOTE_MSG_MAX 4096
#define ZYGOTE_NOTE_MAX 1000       /* the controller accepts a note frame of up to 1024 bytes */
#define SWEEP_ROUNDS 64            /* rounds of /proc scanning before ending a run falls back to kill(-1) */
#define BLOCK_REQUEST_MAX 65536    /* a block's details, written at once into an empty pipe (its default size) */

/* struct sched_attr, SCHED_ATTR_SIZE_VER1 (not in every libc's headers). */
typedef struct {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
} agent_sched_attr;

/* What a process's fork inherits and same-uid code can change from outside without ptrace. */
typedef struct {
    struct rlimit limits[RLIM_NLIMITS];
    int limits_ok[RLIM_NLIMITS];
    int nice;
    agent_sched_attr sched;
    int sched_ok;
    cpu_set_t affinity;
    int affinity_ok;
    long ioprio;
} inherited_state;

/* The zygote options of a run request. */
typedef struct {
    uint32_t script;               /* 0: no zygote; else argv[0..script) is the interpreter command */
    uint32_t argc;                 /* what replaces the script: e.g. "-c" LOADER */
    char **argv;
    char *bootstrap;
    size_t bootstrap_len;
    uint32_t start_timeout_ms, fork_timeout_ms, max_forks, max_restarts;
    uint32_t prepare;              /* start one after this run if there is none (0: the session ends after it) */
} zygote_spec;

static struct {
    pid_t pid;                     /* 0: none */
    int ctl, out;                  /* the agent's end of the socket; the read end of its output pipe */
    int ready;
    uint32_t forks;
    unsigned char *key;            /* what it was started for: command, environment, directory, bootstrap */
    size_t key_len;
    uint32_t start_timeout_ms;
    inherited_state recorded;
    uint32_t tampered;             /* replaced in a row because a block's code touched it */
    char lost[256];                /* why the last one was lost, for the next run's note */
    unsigned char *failed_key;     /* a zygote for this key cannot start here: */
    size_t failed_key_len;
    char failed[512];              /* why */
    int clean;                     /* started by a scrub, in an emptied sandbox: no user file was there at its start */
} zyg = {.ctl = -1, .out = -1};

/* A process the zygote forked for a block, adopted by the agent, its pipes open here, waiting for its block. */
typedef struct {
    pid_t pid;                     /* 0: none */
    int fds[3];                    /* its stdin's write end, its stdout's and stderr's read ends */
    int go;                        /* where its block's details go */
} zygote_child;

/*
 * One forked ahead, after a run, so that the next block does not wait for the fork. It exists only between runs:
 * a run takes it, or kills it before any user code runs (it is dumpable, as the block's process must be).
 */
static zygote_child spare = {0, {-1, -1, -1}, -1};

static void child_discard(zygote_child *c) {
    for (int i = 0; i < 3; i++) if (c->fds[i] >= 0) close(c->fds[i]);
    if (c->go >= 0) close(c->go);
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR) {}
    }
    c->pid = 0;
    c->fds[0] = c->fds[1] = c->fds[2] = c->go = -1;
}

static void child_discard_spare(void) {
    child_discard(&spare);
}

static pid_t spare_pid(void) {
    return spare.pid;
}

/* The spare died (its exit status was reaped elsewhere): only its fds are left to close. */
static void spare_reaped(void) {
    spare.pid = 0;
    child_discard(&spare);
}

static void free_spec(zygote_spec *z) {
    for (uint32_t i = 0; z->argv && i < z->argc; i++) free(z->argv[i]);
    free(z->argv);
    free(z->bootstrap);
    memset(z, 0, sizeof *z);
}

/* The zygote section of a run request; an absent section (script 0) asks for none. */
static void rd_spec(reader *r, zygote_spec *z) {
    memset(z, 0, sizeof *z);
    if (r->left == 0) return;
    z->script = rd_u32(r);
    if (z->script == 0) return;
    z->argc = rd_u32(r);
    if (r->bad || z->argc > 64) { r->bad = 1; return; }
    z->argv = calloc((size_t)z->argc + 1, sizeof *z->argv);
    if (!z->argv) { r->bad = 1; return; }
    for (uint32_t i = 0; i < z->argc && !r->bad; i++) z->argv[i] = rd_str(r, NULL);
    z->bootstrap = rd_str(r, &z->bootstrap_len);
    z->start_timeout_ms = rd_u32(r);
    z->fork_timeout_ms = rd_u32(r);
    z->max_forks = rd_u32(r);
    z->max_restarts = rd_u32(r);
    z->prepare = rd_u32(r);
}

static void key_put(unsigned char **buf, size_t *len, size_t *cap, const void *data, size_t n) {
    if (*len + n + 4 > *cap) {
        size_t want = (*cap ? *cap * 2 : 4096) + n + 4;
        unsigned char *grown = realloc(*buf, want);
        if (!grown) { free(*buf); *buf = NULL; *cap = 0; *len = 0; return; }
        *buf = grown;
        *cap = want;
    }
    if (!*buf) return;
    put_u32(*buf + *len, (uint32_t)n);
    memcpy(*buf + *len + 4, data, n);
    *len += n + 4;
}

/* Everything a zygote's start-up depends on that a request gives: two runs with equal keys start alike. */
static unsigned char *zygote_key(const zygote_spec *z, char **argv, char **envp, const char *cwd, size_t *out_len) {
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (uint32_t i = 0; i < z->script; i++) key_put(&buf, &len, &cap, argv[i], strlen(argv[i]));
    key_put(&buf, &len, &cap, "\0argv", 5);
    for (uint32_t i = 0; i < z->argc; i++) key_put(&buf, &len, &cap, z->argv[i], strlen(z->argv[i]));
    key_put(&buf, &len, &cap, "\0env", 4);
    for (char **e = envp; *e; e++) key_put(&buf, &len, &cap, *e, strlen(*e));
    key_put(&buf, &len, &cap, "\0cwd", 4);
    key_put(&buf, &len, &cap, cwd, strlen(cwd));
    key_put(&buf, &len, &cap, z->bootstrap, z->bootstrap_len);
    *out_len = len;
    return buf;
}

static int same_key(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen) {
    return a && b && alen == blen && memcmp(a, b, alen) == 0;
}

static void record_inherited(pid_t pid, inherited_state *s) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < RLIM_NLIMITS; i++) s->limits_ok[i] = prlimit(pid, i, NULL, &s->limits[i]) == 0;
    errno = 0;
    s->nice = getpriority(PRIO_PROCESS, (id_t)pid);
    if (errno) s->nice = 1000;
    s->sched_ok = syscall(SYS_sched_getattr, pid, &s->sched, sizeof s->sched, 0) == 0;
    s->affinity_ok = sched_getaffinity(pid, sizeof s->affinity, &s->affinity) == 0;
    s->ioprio = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, pid);
}

static int same_inherited(const inherited_state *a, const inherited_state *b) {
    for (int i = 0; i < RLIM_NLIMITS; i++) {
        if (a->limits_ok[i] != b->limits_ok[i]) return 0;
        if (a->limits_ok[i] && (a->limits[i].rlim_cur != b->limits[i].rlim_cur || a->limits[i].rlim_max != b->limits[i].rlim_max)) return 0;
    }
    if (a->nice != b->nice || a->sched_ok != b->sched_ok || a->affinity_ok != b->affinity_ok || a->ioprio != b->ioprio) return 0;
    if (a->sched_ok && memcmp(&a->sched, &b->sched, sizeof a->sched) != 0) return 0;
    if (a->affinity_ok && !CPU_EQUAL(&a->affinity, &b->affinity)) return 0;
    return 1;
}

/* The lines of /proc/PID/status that say whether a process was stopped, traced or signalled. */
typedef struct {
    char state;
    unsigned long long sigpnd, shdpnd;
    long tracer;
} proc_status;

static int read_status(pid_t pid, proc_status *s) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    memset(s, 0, sizeof *s);
    char *p;
    if ((p = strstr(buf, "\nState:")) == NULL || sscanf(p, "\nState: %c", &s->state) != 1) return -1;
    if ((p = strstr(buf, "\nTracerPid:")) == NULL || sscanf(p, "\nTracerPid: %ld", &s->tracer) != 1) return -1;
    if ((p = strstr(buf, "\nSigPnd:")) == NULL || sscanf(p, "\nSigPnd: %llx", &s->sigpnd) != 1) return -1;
    if ((p = strstr(buf, "\nShdPnd:")) == NULL || sscanf(p, "\nShdPnd: %llx", &s->shdpnd) != 1) return -1;
    return 0;
}

/* NULL when the zygote is as it was when it said it was ready; else what is different. */
static const char *zygote_touched(void) {
    static char why[200];
    proc_status st;
    if (zyg.pid <= 0 || !zyg.ready) return "it is not running";
    if (read_status(zyg.pid, &st) < 0) return "its /proc status cannot be read";
    if (st.state != 'S' && st.state != 'R') {
        snprintf(why, sizeof why, "it was stopped, traced or killed (state %c)", st.state);
        return why;
    }
    if (st.tracer) return "it is being traced";
    if (st.sigpnd || st.shdpnd) {
        snprintf(why, sizeof why, "it was sent signals (pending %llx)", st.sigpnd | st.shdpnd);
        return why;
    }
    inherited_state now;
    record_inherited(zyg.pid, &now);
    if (!same_inherited(&zyg.recorded, &now)) return "its rlimits, priority or CPU affinity were changed";
    int pending = 0;
    if (ioctl(zyg.out, FIONREAD, &pending) < 0 || pending > 0) return "it wrote to its output";
    return NULL;
}

static void zygote_close_fds(void) {
    if (zyg.ctl >= 0) close(zyg.ctl);
    if (zyg.out >= 0) close(zyg.out);
    zyg.ctl = zyg.out = -1;
}

/* The zygote ended (its exit status was reaped elsewhere): forget it, and say why in the next run's note. */
static void zygote_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A zygote that ended before it was ready will not start any better next time (its interpreter is missing, or
 * refused, or its start-up failed): the session's blocks keep plain starts, and the reason is its refusal or output.
 */
static void zygote_start_failed(const char *how) {
    char msg[ZYGOTE_MSG_MAX];
    ssize_t n = zyg.ctl >= 0 ? recv(zyg.ctl, msg, sizeof msg - 1, MSG_DONTWAIT) : -1;
    if (n > 0 && msg[0] == 'N') {
        msg[n] = 0;
        zygote_fail("no zygote: %s", msg + 1);
        return;
    }
    char out[200] = "";
    ssize_t got = zyg.out >= 0 ? read(zyg.out, out, sizeof out - 1) : -1;
    if (got > 0) out[got] = 0;
    else out[0] = 0;
    for (char *c = out; *c; c++) if (*c == '\n' || *c == '\r') *c = ' ';
    zygote_fail("the zygote's interpreter could not start (%s)%s%s", how, out[0] ? ": " : "", out);
}

/* The zygote ended (its exit status was reaped elsewhere): forget it, and say why in the next run's note. */
static void zygote_reaped(int status) {
    char how[64];
    if (WIFSIGNALED(status)) snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(status));
    else snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
    int was_ready = zyg.ready;
    zyg.pid = 0;
    zyg.ready = 0;
    if (!was_ready) {
        zygote_start_failed(how);
        zygote_close_fds();
        return;
    }
    snprintf(zyg.lost, sizeof zyg.lost, "the zygote %s", how);
    zygote_close_fds();
    zyg.tampered++; /* a ready zygote only ends when something killed it */
}

/* Every wait for any child goes through here, so that the zygote's end is never missed. */
static void child_reaped(pid_t p, int status) {
    if (p > 0 && p == zyg.pid) zygote_reaped(status);
    if (p > 0 && p == spare_pid()) spare_reaped();
}

static void zygote_kill(const char *why) {
    child_discard_spare();
    if (zyg.pid <= 0) return;
    kill(zyg.pid, SIGKILL);
    int st;
    while (waitpid(zyg.pid, &st, 0) < 0 && errno == EINTR) {}
    zygote_close_fds();
    zyg.pid = 0;
    zyg.ready = 0;
    snprintf(zyg.lost, sizeof zyg.lost, "%s", why);
}

/* A zygote for the current key cannot start here (no such interpreter, no ctypes, a version not supported, a
 * start-up that prints): the session's blocks keep plain starts. */
static void zygote_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(zyg.failed, sizeof zyg.failed, fmt, ap);
    va_end(ap);
    free(zyg.failed_key);
    zyg.failed_key = zyg.key;
    zyg.failed_key_len = zyg.key_len;
    zyg.key = NULL;
    zyg.key_len = 0;
    if (zyg.pid > 0) zygote_kill(zyg.failed);
}

/* A whole message from the socket, with the sender's pid from the kernel; -1 on timeout, 0 on EOF. */
static ssize_t zygote_recv(char *buf, size_t cap, uint64_t deadline_us, pid_t *sender) {
    for (;;) {
        uint64_t now = now_us();
        if (now >= deadline_us) return -1;
        struct pollfd p = {zyg.ctl, POLLIN, 0};
        int ms = (int)((deadline_us - now + 999) / 1000);
        int ready = poll(&p, 1, ms);
        if (ready < 0 && errno != EINTR) return 0;
        if (ready <= 0) continue;
        union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(struct ucred))]; } control;
        struct iovec iov = {buf, cap - 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control};
        ssize_t n = recvmsg(zyg.ctl, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) return 0;
        buf[n] = 0;
        *sender = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred cred;
                memcpy(&cred, CMSG_DATA(c), sizeof cred);
                *sender = cred.pid;
            }
        }
        return n;
    }
}

/* Waits for a zygote still starting to be ready (or to fail): no user code may run before it is locked down. */
static void zygote_settle(void) {
    if (zyg.pid <= 0 || zyg.ready) return;
    char msg[ZYGOTE_MSG_MAX];
    pid_t sender;
    ssize_t n = zygote_recv(msg, sizeof msg, now_us() + (uint64_t)zyg.start_timeout_ms * 1000u, &sender);
    if (n < 0) {
        /* A slow machine, or a start-up a block's files made hang: replaced after the run, as after tampering
         * (so that a start-up that always hangs ends in plain starts after max_restarts). */
        char why[100];
        snprintf(why, sizeof why, "the zygote did not start within %u ms", zyg.start_timeout_ms);
        zygote_kill(why);
        zyg.tampered++;
        return;
    }
    if (n == 0 || sender != zyg.pid) {
        zygote_start_failed(n == 0 ? "it ended" : "a message from another process");
        return;
    }
    if (msg[0] == 'N') { zygote_fail("no zygote: %s", msg + 1); return; }
    if (msg[0] != 'Z') { zygote_fail("the zygote said '%c' at start", msg[0]); return; }
    int pending = 0;
    if (ioctl(zyg.out, FIONREAD, &pending) < 0 || pending > 0) {
        zygote_fail("the interpreter printed at start-up (%d bytes): a fork could not show it to the block", pending);
        return;
    }
    record_inherited(zyg.pid, &zyg.recorded);
    zyg.ready = 1;
}

/* Starts a zygote for this run's command, environment and directory; it gets ready while the agent waits. */
static void zygote_start(const zygote_spec *z, char **argv, char **envp, const char *cwd, unsigned char *key, size_t key_len) {
    static int subreaper = 0;
    DIR *proc = opendir("/proc");
    int proc_ok = proc && readdir(proc) != NULL;
    if (proc) closedir(proc);
    zyg.key = key;
    zyg.key_len = key_len;
    if (!proc_ok) { zygote_fail("no zygote: /proc cannot be listed here, so ending a run could not spare it"); return; }
    if (!subreaper) subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 || getpid() == 1;
    if (!subreaper) { zygote_fail("no zygote: the agent cannot adopt its forks (PR_SET_CHILD_SUBREAPER)"); return; }
    int sv[2], outp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) { zygote_fail("no zygote: socketpair: %s", strerror(errno)); return; }
    if (pipe2(outp, O_CLOEXEC) < 0) { close(sv[0]); close(sv[1]); zygote_fail("no zygote: pipe: %s", strerror(errno)); return; }
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    char **zargv = calloc((size_t)z->script + z->argc + 1, sizeof *zargv);
    if (devnull < 0 || !zargv) {
        close(sv[0]); close(sv[1]); close(outp[0]); close(outp[1]);
        if (devnull >= 0) close(devnull);
        free(zargv);
        zygote_fail("no zygote: cannot prepare its start (%s)", strerror(errno));
        return;
    }
    for (uint32_t i = 0; i < z->script; i++) zargv[i] = argv[i];
    for (uint32_t i = 0; i < z->argc; i++) zargv[z->script + i] = z->argv[i];
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        setsid();
        dup2(devnull, 0);
        dup2(outp[1], 1);
        dup2(outp[1], 2);
        dup2(sv[1], ZYGOTE_CTL_FD);
        for (int fd = 0; fd <= ZYGOTE_CTL_FD; fd++) fcntl(fd, F_SETFD, 0);
        syscall(SYS_close_range, ZYGOTE_CTL_FD + 1u, ~0u, 0u);
        if (chdir(cwd) < 0) _exit(127);
        for (char **e = envp; *e; e++) if (!strncmp(*e, "PATH=", 5)) { setenv("PATH", *e + 5, 1); break; }
        execvpe(zargv[0], zargv, envp);
        _exit(127);
    }
    free(zargv);
    close(sv[1]);
    close(outp[1]);
    close(devnull);
    if (pid < 0) {
        close(sv[0]);
        close(outp[0]);
        zygote_fail("no zygote: fork failed: %s", strerror(errno));
        return;
    }
    zyg.pid = pid;
    zyg.ctl = sv[0];
    zyg.out = outp[0];
    zyg.ready = 0;
    zyg.forks = 0;
    zyg.clean = 0; /* a scrub that started it says so once this returns */
    zyg.start_timeout_ms = z->start_timeout_ms;
    set_nonblock(zyg.out);
    int on = 1;
    setsockopt(zyg.ctl, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    if (send(zyg.ctl, z->bootstrap, z->bootstrap_len, MSG_NOSIGNAL) != (ssize_t)z->bootstrap_len) {
        zygote_fail("no zygote: cannot send it its bootstrap: %s", strerror(errno));
    }
}

/*
 * Whether this run can use the zygote; when not, *note says why. Replaces a zygote that cannot serve this run
 * (started for another command or environment, touched) so that the next one can.
 */
static int zygote_usable(const zygote_spec *z, const unsigned char *key, size_t key_len, char *note, size_t cap) {
    if (!contained) {
        snprintf(note, cap, "plain start: zygotes need a contained agent (its own pid namespace)");
        return 0;
    }
    if (same_key(zyg.failed_key, zyg.failed_key_len, key, key_len)) {
        snprintf(note, cap, "plain start: %s", zyg.failed);
        return 0;
    }
    if (zyg.pid <= 0) {
        if (zyg.lost[0]) snprintf(note, cap, "plain start: %s; a new zygote starts after this block", zyg.lost);
        else snprintf(note, cap, "plain start: the zygote starts after this block");
        zyg.lost[0] = 0;
        return 0;
    }
    if (!same_key(zyg.key, zyg.key_len, key, key_len)) {
        snprintf(note, cap, "plain start: the zygote was started for another command, environment or directory; "
                            "it is replaced after this block");
        zygote_kill("replaced for another command, environment or directory");
        zyg.lost[0] = 0;
        return 0;
    }
    const char *why = zygote_touched();
    if (why) {
        snprintf(note, cap, "plain start: the zygote was replaced because %s", why);
        zygote_kill(why);
        zyg.tampered++;
        zyg.lost[0] = 0;
        return 0;
    }
    (void)z;
    return 1;
}

/* Opens one of the block's pipe ends held by PID, checking it is a pipe. */
static int open_child_pipe(pid_t pid, int fd, int mode) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
    int got = open(path, mode | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (got >= 0 && (fstat(got, &st) < 0 || !S_ISFIFO(st.st_mode))) {
        close(got);
        got = -1;
    }
    return got;
}

/*
 * Has the zygote fork a process for a block; once it is adopted and has made its pipes, opens their other ends.
 * Returns 1 with *c set; 0 when there is none (*note says why; a zygote that failed is replaced).
 */
static int zygote_spawn_child(uint32_t fork_timeout_ms, zygote_child *c, char *note, size_t cap) {
    char msg[ZYGOTE_MSG_MAX];
    pid_t sender;
    /* Leftovers of a block's process given up on earlier are not answers to this request. */
    while (recv(zyg.ctl, msg, sizeof msg, MSG_DONTWAIT) > 0) {}
    char req[32];
    int len = snprintf(req, sizeof req, "F%d", (int)getpid());
    if (send(zyg.ctl, req, (size_t)len, MSG_NOSIGNAL) != len) {
        snprintf(note, cap, "plain start: the zygote does not take requests (%s); it is replaced", strerror(errno));
        zygote_kill("it stopped taking requests");
        zyg.lost[0] = 0;
        return 0;
    }
    ssize_t n = zygote_recv(msg, sizeof msg, now_us() + (uint64_t)fork_timeout_ms * 1000u, &sender);
    if (n <= 0) {
        snprintf(note, cap, "plain start: the zygote %s; it is replaced", n < 0 ? "did not fork in time" : "is gone");
        zygote_kill(n < 0 ? "it did not fork in time" : "it went away");
        zyg.lost[0] = 0;
        return 0;
    }
    if (msg[0] == 'E') {
        snprintf(note, cap, "plain start: %.900s", msg + 1);
        return 0;
    }
    int claimed, want[4];
    if (msg[0] != 'R' || sscanf(msg + 1, "%d %d %d %d %d", &claimed, &want[0], &want[1], &want[2], &want[3]) != 5
            || claimed != sender || sender <= 0 || sender == zyg.pid) {
        snprintf(note, cap, "plain start: the zygote answered a fork with something else; it is replaced");
        if (sender > 0 && sender != zyg.pid) kill(sender, SIGKILL);
        zygote_kill("it answered a fork with something else");
        zyg.lost[0] = 0;
        return 0;
    }
    c->pid = sender;
    c->fds[0] = c->fds[1] = c->fds[2] = c->go = -1;
    /* It must be our child now (adopted), as a plain start is. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    const char *fail = NULL;
    if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid != 0) {
        fail = "its fork is not the agent's child";
    } else {
        c->fds[0] = open_child_pipe(c->pid, want[0], O_WRONLY);
        c->fds[1] = open_child_pipe(c->pid, want[1], O_RDONLY);
        c->fds[2] = open_child_pipe(c->pid, want[2], O_RDONLY);
        c->go = open_child_pipe(c->pid, want[3], O_WRONLY);
        if (c->fds[0] < 0 || c->fds[1] < 0 || c->fds[2] < 0 || c->go < 0) fail = "its fork's pipes cannot be opened";
    }
    if (fail) {
        child_discard(c);
        snprintf(note, cap, "plain start: %s; the zygote is replaced", fail);
        zygote_kill(fail);
        zyg.lost[0] = 0;
        return 0;
    }
    return 1;
}

/*
 * Gives a forked process its block: its rlimits, then the working directory and argv. It answers once it has
 * checked that it can run the block as a plain start would (K), or declines (D: its start-up inputs changed, or
 * the script is not one it can run); then the block runs. Returns 1 when it runs the block; 0 when the block must
 * have a plain start (the process is gone then, and *note says why).
 */
static int zygote_give_block(zygote_child *c, const zygote_spec *z, char **argv, uint32_t argc, const char *cwd,
                             uint64_t fsize_limit, uint64_t nproc_limit, char *note, size_t cap) {
    const char *fail = NULL;
    struct rlimit core = {0, 0};
    if (prlimit(c->pid, RLIMIT_CORE, &core, NULL) < 0) fail = "its fork's rlimits cannot be set";
    if (!fail && fsize_limit > 0) {
        struct rlimit fs = {fsize_limit, fsize_limit};
        if (prlimit(c->pid, RLIMIT_FSIZE, &fs, NULL) < 0) fail = "its fork's rlimits cannot be set";
    }
    if (!fail && nproc_limit > 0) {
        struct rlimit np = {nproc_limit, nproc_limit};
        if (prlimit(c->pid, RLIMIT_NPROC, &np, NULL) < 0) fail = "its fork's rlimits cannot be set";
    }
    /* Its length on a line, then: working directory, index of the script, argv; NUL-separated. */
    size_t body = strlen(cwd) + 12;
    for (uint32_t i = 0; i < argc; i++) body += strlen(argv[i]) + 1;
    char *req = fail ? NULL : malloc(body + 24);
    if (!fail && (!req || body + 24 > BLOCK_REQUEST_MAX)) fail = "the command line is too long for the zygote's fork";
    if (!fail) {
        int head = snprintf(req, 24, "%zu\n", (size_t)0);
        size_t len = (size_t)snprintf(req + head, body, "%s%c%u", cwd, 0, z->script);
        for (uint32_t i = 0; i < argc; i++) {
            req[head + len++] = 0;
            size_t n = strlen(argv[i]);
            memcpy(req + head + len, argv[i], n);
            len += n;
        }
        char line[24];
        int lh = snprintf(line, sizeof line, "%zu\n", len);
        memmove(req + lh, req + head, len);
        memcpy(req, line, (size_t)lh);
        len += (size_t)lh;
        /* Non-blocking, and smaller than the pipe's buffer: the whole request or nothing. */
        if (write(c->go, req, len) != (ssize_t)len) fail = "its fork did not take its block";
    }
    free(req);
    close(c->go);
    c->go = -1;
    char msg[ZYGOTE_MSG_MAX];
    pid_t sender = 0;
    ssize_t n = 0;
    if (!fail) {
        uint64_t deadline = now_us() + (uint64_t)z->fork_timeout_ms * 1000u;
        while ((n = zygote_recv(msg, sizeof msg, deadline, &sender)) > 0 && sender != c->pid) {}
        if (n <= 0) fail = n < 0 ? "its fork did not answer in time" : "the zygote went away";
    }
    if (fail) {
        child_discard(c);
        snprintf(note, cap, "plain start: %s; the zygote is replaced", fail);
        zygote_kill(fail);
        zyg.lost[0] = 0;
        return 0;
    }
    if (msg[0] == 'D') {
        /* Its start-up inputs changed, or the script is not one a fork can run: a new zygote after this block. */
        snprintf(note, cap, "plain start: the zygote's fork declined: %.900s", msg + 1);
        child_discard(c);
        zygote_kill("its fork declined a block");
        zyg.lost[0] = 0;
        return 0;
    }
    if (msg[0] != 'K') {
        child_discard(c);
        snprintf(note, cap, "plain start: the zygote's fork answered with something else; the zygote is replaced");
        zygote_kill("its fork answered with something else");
        zyg.lost[0] = 0;
        return 0;
    }
    zyg.forks++;
    return 1;
}

/* The process for this run's block: the spare forked after the last run, else one forked now. */
static int zygote_fork(const zygote_spec *z, char **argv, uint32_t argc, const char *cwd, uint64_t fsize_limit,
                       uint64_t nproc_limit, pid_t *pid_out, int fds[3], char *note, size_t cap) {
    zygote_child c = spare;
    spare.pid = 0;
    spare.fds[0] = spare.fds[1] = spare.fds[2] = spare.go = -1;
    if (c.pid <= 0 && !zygote_spawn_child(z->fork_timeout_ms, &c, note, cap)) return 0;
    if (!zygote_give_block(&c, z, argv, argc, cwd, fsize_limit, nproc_limit, note, cap)) return 0;
    *pid_out = c.pid;
    for (int i = 0; i < 3; i++) fds[i] = c.fds[i];
    return 1;
}

/* After a run that asked for a zygote: replace a used-up one, start one where there is none. */
static void zygote_after_run(const zygote_spec *z, int used, char **argv, char **envp, const char *cwd,
                             unsigned char *key, size_t key_len) {
    if (!contained || same_key(zyg.failed_key, zyg.failed_key_len, key, key_len)) { free(key); return; }
    if (used && zyg.pid > 0) zyg.tampered = 0; /* a block ran in it and left it intact: the count is of replacements in a row */
    if (zyg.pid > 0 && z->max_forks > 0 && zyg.forks >= z->max_forks) {
        zygote_kill("it served its number of forks");
        zyg.lost[0] = 0;
    }
    if (zyg.pid > 0 && zyg.ready && z->prepare && spare.pid <= 0 && !zygote_touched()) {
        /* The next block's process, forked now: its fork and set-up are off that block's path. */
        char ignored[ZYGOTE_NOTE_MAX + 1];
        if (!zygote_spawn_child(z->fork_timeout_ms, &spare, ignored, sizeof ignored)) spare.pid = 0;
    }
    if (zyg.pid > 0 || !z->prepare) { free(key); return; }
    if (zyg.tampered > z->max_restarts) {
        zyg.key = key;
        zyg.key_len = key_len;
        zygote_fail("the zygote was replaced %u times in a row after blocks touched it", zyg.tampered);
        return;
    }
    free(zyg.key);
    zygote_start(z, argv, envp, cwd, key, key_len);
}

/* Reads a process's state from /proc/PID/status: 1 if it is alive and not yet sent SIGKILL, else 0. */
static int needs_kill(pid_t pid) {
    proc_status st;
    if (read_status(pid, &st) < 0) return 0; /* gone */
    if (st.state == 'Z' || st.state == 'X') return 0;
    const unsigned long long sigkill = 1ull << (SIGKILL - 1);
    return !((st.sigpnd | st.shdpnd) & sigkill);
}

/*
 * Kills every process of the sandbox but the agent and the zygote: what kill(-1) does, sparing one. Every
 * process alive at the start of a round is seen in it; a process made during a round has a parent alive at its
 * start, killed in it (then another round follows) or made during it. So a round that finds nothing left to kill
 * (every process a zombie or with SIGKILL pending) proves that nothing else can run any more. Returns 0 when
 * /proc cannot be read or the rounds run out; the caller then uses kill(-1).
 */
static int sweep_sparing_zygote(void) {
    pid_t self = getpid();
    for (int round = 0; round < SWEEP_ROUNDS; round++) {
        DIR *d = opendir("/proc");
        if (!d) return 0;
        int killed = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char *end;
            long p = strtol(de->d_name, &end, 10);
            if (*end || p <= 0 || p == self || p == zyg.pid) continue;
            if (needs_kill((pid_t)p) && kill((pid_t)p, SIGKILL) == 0) killed++;
        }
        closedir(d);
        if (!killed) return 1;
    }
    return 0;
}

/* ---------- killing what a run left behind ---------- */

static void kill_run(pid_t pgid) {
    if (!contained) {
        kill(-pgid, SIGKILL);
        return;
    }
    if (zyg.pid > 0 && zyg.ready) {
        if (sweep_sparing_zygote()) {
            /* Checked once nothing else can run: a touched zygote dies too, and is replaced after the run. */
            const char *why = zygote_touched();
            if (why) {
                zygote_kill(why);
                zyg.tampered++;
            }
            return;
        }
        zygote_kill("ending the run could not spare it");
    }
    kill(-1, SIGKILL); /* everything in this pid namespace but us (and pid 1) */
}

static void reap_all(pid_t main_pid, int *main_status, struct rusage *main_usage, int *main_done) {
    for (;;) {
        int st;
        struct rusage ru;
        pid_t p = wait4(-1, &st, WNOHANG, &ru);
        if (p <= 0) return;
        if (p == main_pid && !*main_done) {
            *main_status = st;
            *main_usage = ru;
            *main_done = 1;
        }
        child_reaped(p, st);
    }
}

/* A plain start: fork, then exec the command. Returns the pid, or -1 after sending an error frame. */
static pid_t spawn_plain(char **argv, char **envp, const char *cwd, uint64_t fsize_limit, uint64_t nproc_limit,
                         int fds[3], int *exec_errno) {
    int in_pipe[2], out_pipe[2], err_pipe[2], exec_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) || pipe2(exec_pipe, O_CLOEXEC)) {
        send_error("pipe failed: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        send_error("fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        setsid();
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        struct rlimit core = {0, 0};
        setrlimit(RLIMIT_CORE, &core);
        if (fsize_limit > 0) {
            struct rlimit fs = {fsize_limit, fsize_limit};
            setrlimit(RLIMIT_FSIZE, &fs);
        }
        if (nproc_limit > 0) {
            /* Only where the kernel counts this sandbox's processes alone (gVisor); see the controller. */
            struct rlimit np = {nproc_limit, nproc_limit};
            setrlimit(RLIMIT_NPROC, &np);
        }
        if (chdir(cwd) < 0) {
            int e = errno;
            write(exec_pipe[1], &e, sizeof e);
            _exit(127);
        }
        /* PATH comes from the request's environment, never from the agent's. */
        for (char **e = envp; *e; e++) if (!strncmp(*e, "PATH=", 5)) { setenv("PATH", *e + 5, 1); break; }
        execvpe(argv[0], argv, envp);
        int e = errno;
        write(exec_pipe[1], &e, sizeof e);
        _exit(127);
    }
    close(in_pipe[0]); close(out_pipe[1]); close(err_pipe[1]); close(exec_pipe[1]);
    set_nonblock(in_pipe[1]); set_nonblock(out_pipe[0]); set_nonblock(err_pipe[0]);
    if (read(exec_pipe[0], exec_errno, sizeof *exec_errno) != sizeof *exec_errno) *exec_errno = 0;
    close(exec_pipe[0]);
    fds[0] = in_pipe[1];
    fds[1] = out_pipe[0];
    fds[2] = err_pipe[0];
    return pid;
}

static void handle_run(reader *r) {
    uint32_t timeout_ms = rd_u32(r);
    uint64_t out_limit[2];
    out_limit[0] = rd_u64(r);
    out_limit[1] = rd_u64(r);
    uint64_t fsize_limit = rd_u64(r);
    uint64_t nproc_limit = rd_u64(r);
    char *cwd = rd_str(r, NULL);
    uint32_t argc = rd_u32(r);
    zygote_spec zspec;
    memset(&zspec, 0, sizeof zspec);
    unsigned char *key = NULL;
    size_t key_len = 0;
    if (r->bad || argc == 0 || argc > 4096) { send_error("malformed run request"); free(cwd); return; }
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    for (uint32_t i = 0; i < argc && !r->bad; i++) argv[i] = rd_str(r, NULL);
    uint32_t envc = rd_u32(r);
    char **envp = r->bad || envc > 4096 ? NULL : calloc((size_t)envc + 1, sizeof *envp);
    for (uint32_t i = 0; envp && i < envc && !r->bad; i++) envp[i] = rd_str(r, NULL);
    size_t stdin_len = 0;
    char *stdin_data = rd_str(r, &stdin_len);
    if (!r->bad) rd_spec(r, &zspec);
    if (r->bad || !envp || zspec.script >= argc) { send_error("malformed run request"); goto cleanup; }
    if (contained && runs_as_root()) {
        send_error("refusing to run code as uid 0 or gid 0 in a sandbox (the agent runs as uid %d gid %d): "
                   "start the sandbox as an unprivileged user", (int)geteuid(), (int)getegid());
        goto cleanup;
    }
    /* No user code runs while a zygote is still starting (it is not locked down yet). */
    zygote_settle();

    char note[ZYGOTE_NOTE_MAX + 1] = "";
    int use_zygote = 0;
    if (zspec.script > 0) {
        key = zygote_key(&zspec, argv, envp, cwd, &key_len);
        use_zygote = key != NULL && zygote_usable(&zspec, key, key_len, note, sizeof note);
    }
    /* A spare fork this run does not take must not be there while its code runs. */
    if (!use_zygote) child_discard_spare();

    file_list before = snapshot();
    int64_t oom_before = read_oom_kills();

    int child_fds[3];
    int exec_errno = 0;
    int via_zygote = 0;
    uint64_t started = now_us();
    pid_t pid = -1;
    if (use_zygote) {
        via_zygote = zygote_fork(&zspec, argv, argc, cwd, fsize_limit, nproc_limit, &pid, child_fds, note, sizeof note);
    }
    if (!via_zygote) {
        started = now_us();
        pid = spawn_plain(argv, envp, cwd, fsize_limit, nproc_limit, child_fds, &exec_errno);
        if (pid < 0) {
            free_list(&before);
            goto cleanup;
        }
    }

    int fds[2] = {child_fds[1], child_fds[2]};
    int in_fd = child_fds[0];
    size_t in_off = 0;
    if (stdin_len == 0) { close(in_fd); in_fd = -1; }
    uint64_t sent[2] = {0, 0};
    int flags = 0, main_done = 0, main_status = 0, killed = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    uint64_t deadline = started + (uint64_t)timeout_ms * 1000u;
    uint64_t drain_deadline = 0;
    char *buf = malloc(CHUNK);
    sigset_t empty;
    sigemptyset(&empty);

    while (fds[0] >= 0 || fds[1] >= 0 || !main_done) {
        if (child_event) {
            child_event = 0;
            reap_all(pid, &main_status, &usage, &main_done);
        }
        if (main_done && !killed) {
            /* The run is over when its main process is: nothing it started may outlive it. */
            kill_run(pid);
            killed = 1;
            drain_deadline = now_us() + 500000u;
        }
        uint64_t now = now_us();
        if (!main_done && now >= deadline) {
            flags |= F_TIMEOUT;
            kill_run(pid);
            killed = 1;
            drain_deadline = now + 500000u;
            deadline = UINT64_MAX;
        }
        if (killed && now >= drain_deadline && main_done) break;
        if (fds[0] < 0 && fds[1] < 0 && main_done) break;

        struct pollfd p[4];
        int n = 0, idx[4];
        for (int s = 0; s < 2; s++) if (fds[s] >= 0) { p[n].fd = fds[s]; p[n].events = POLLIN; idx[n++] = s; }
        if (in_fd >= 0) { p[n].fd = in_fd; p[n].events = POLLOUT; idx[n++] = 2; }
        /* The controller may cancel a run, or vanish: either way the run must end now. */
        if (!killed && !controller_gone) { p[n].fd = STDIN_FILENO; p[n].events = POLLIN; idx[n++] = 3; }
        uint64_t wake = killed ? drain_deadline : deadline;
        uint64_t wait_us = wake > now ? wake - now : 0;
        if (wait_us > 1000000u) wait_us = 1000000u;
        struct timespec ts = {(time_t)(wait_us / 1000000u), (long)(wait_us % 1000000u) * 1000};
        int ready = ppoll(p, (nfds_t)n, &ts, &empty);
        if (ready < 0 && errno != EINTR) break;
        if (ready <= 0) continue;
        for (int i = 0; i < n; i++) {
            if (!p[i].revents) continue;
            int s = idx[i];
            if (s == 3) {
                unsigned char h[5];
                int ok = read_full(STDIN_FILENO, h, 5);
                if (ok > 0 && h[0] == 'C' && h[1] == 0 && h[2] == 0 && h[3] == 0 && h[4] == 0) {
                    flags |= F_CANCELLED;
                } else {
                    controller_gone = 1; /* EOF, or a frame that cannot come during a run */
                }
                kill_run(pid);
                killed = 1;
                drain_deadline = now_us() + 500000u;
                continue;
            }
            if (s == 2) {
                ssize_t w = write(in_fd, stdin_data + in_off, stdin_len - in_off);
                if (w > 0) in_off += (size_t)w;
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off >= stdin_len || (p[i].revents & (POLLERR | POLLHUP))) {
                    close(in_fd);
                    in_fd = -1;
                }
                continue;
            }
            ssize_t got = read(fds[s], buf, CHUNK);
            if (got > 0) {
                uint64_t room = out_limit[s] > sent[s] ? out_limit[s] - sent[s] : 0;
                uint64_t take = (uint64_t)got < room ? (uint64_t)got : room;
                if (take) send_frame(s == 0 ? 'o' : 'e', buf, (uint32_t)take);
                sent[s] += take;
                if (take < (uint64_t)got) {
                    /* Over the cap: keep exactly the limit, then end the run. */
                    flags |= (s == 0 ? F_STDOUT_TRUNC : F_STDERR_TRUNC);
                    if (!killed) {
                        flags |= F_OUTPUT_LIMIT;
                        kill_run(pid);
                        killed = 1;
                        drain_deadline = now_us() + 500000u;
                    }
                    close(fds[s]);
                    fds[s] = -1;
                }
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(fds[s]);
                fds[s] = -1;
            }
        }
    }
    /* Past the drain bound: whatever still holds a pipe is already dead or about to be. */
    for (int s = 0; s < 2; s++) if (fds[s] >= 0) close(fds[s]);
    if (in_fd >= 0) close(in_fd);
    while (!main_done) {
        int st;
        struct rusage ru;
        pid_t p = wait4(pid, &st, 0, &ru);
        if (p == pid) { main_status = st; usage = ru; main_done = 1; }
        else if (p < 0 && errno != EINTR) break;
    }
    reap_all(pid, &main_status, &usage, &main_done);
    uint64_t wall = now_us() - started;
    free(buf);

    int64_t oom_after = read_oom_kills();
    if (oom_before >= 0 && oom_after > oom_before) flags |= F_OOM;
    if (exec_errno) flags |= F_SPAWN_FAILED;

    file_list after = snapshot();
    report_changes(&before, &after);
    free_list(&before);
    free_list(&after);

    if (via_zygote) flags |= F_ZYGOTE;
    if (note[0]) send_frame('z', note, (uint32_t)strlen(note));

    int32_t code = 0, sig = 0;
    if (WIFEXITED(main_status)) code = WEXITSTATUS(main_status);
    else if (WIFSIGNALED(main_status)) { sig = WTERMSIG(main_status); code = 128 + sig; }
    unsigned char x[4 + 4 + 4 + 8 + 8 + 4];
    put_u32(x, (uint32_t)code);
    put_u32(x + 4, (uint32_t)sig);
    put_u32(x + 8, (uint32_t)flags);
    put_u64(x + 12, wall);
    put_u64(x + 20, (uint64_t)usage.ru_maxrss * 1024u);
    put_u32(x + 28, (uint32_t)exec_errno);
    send_frame('x', x, sizeof x);

    /* After the result is out: a zygote for the next block starts while the controller handles this one. */
    if (key) {
        zygote_after_run(&zspec, via_zygote, argv, envp, cwd, key, key_len);
        key = NULL;
    }

cleanup:
    free(key);
    free_spec(&zspec);
    for (uint32_t i = 0; argv && i < argc; i++) free(argv[i]);
    free(argv);
    for (uint32_t i = 0; envp && i < envc; i++) free(envp[i]);
    free(envp);
    free(cwd);
    free(stdin_data);
}

/* ---------- scrub: the sandbox made ready for another one-off of the same owner ---------- */

/*
 * 'S' request: u32 flags (SCRUB_KEEP_ZYGOTE), u32 how long processes may take to die (ms), u32 directory count, then
 * per directory an absolute path and the u32 mode to give it (0: leave its mode); then u32 1 when a prime follows:
 * working directory, u32 argc, argv, u32 envc, environment, and the zygote section of a run request.
 *
 * A one-off's run is over (the run already killed what it started); the controller wants to hand this sandbox to
 * another one-off of the same owner instead of removing it. Everything the run could have left is reset here, and
 * verified, so that nothing crosses from one run to the next:
 *   - every process but the agent is killed and reaped, and /proc must then show no other one. The exception is a
 *     zygote the last scrub started (in an emptied workspace, before any user code could plant start-up files) for
 *     the same command and environment, that no block touched (zygote_touched), when the controller allows it: it
 *     is then spared, as between the blocks of a session;
 *   - SysV shared memory, semaphores and message queues are removed (/proc/sysvipc lists them whatever their
 *     mode), and POSIX message queues (/dev/mqueue);
 *   - the directories (the sandbox's writable mounts: workspace, /tmp, /dev/shm) are emptied, given their mode
 *     back and stripped of extended attributes (same-uid code may chmod or setfattr the workspace's root);
 *   - the agent's own rlimits, priority, scheduling, CPU affinity and I/O priority must be as at its start (code of
 *     the agent's uid can lower them with prlimit, setpriority, sched_setaffinity, and the agent could not raise
 *     them back): they are inherited by every later run;
 *   - no OOM kill may have happened in the sandbox since the last scrub (or the agent's start);
 *   - the zygote bookkeeping is reset (failures, replacements, notes), and with a prime a zygote is started now,
 *     in the emptied sandbox, so that the next one-off's first block is a fork.
 * Answers 'k', or 'r' naming what could not be reset (the controller then removes the sandbox).
 */

#define SCRUB_KEEP_ZYGOTE 1u
#define SCRUB_MAX_DIRS 16
#define SCRUB_MAX_DEPTH 256

static inherited_state agent_started_state;
static int64_t oom_kills_at_scrub = -1;

/* Kills every process but the agent (and ZYGOTE, when above 0) until /proc lists none, within DEADLINE. */
static int scrub_processes(pid_t zygote, uint64_t deadline, char *why, size_t cap) {
    pid_t self = getpid();
    for (;;) {
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) child_reaped(p, st);
        DIR *d = opendir("/proc");
        if (!d) { snprintf(why, cap, "/proc cannot be listed to check that no process is left"); return -1; }
        int left = 0;
        long example = 0;
        char state = '?';
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char *end;
            long pid = strtol(de->d_name, &end, 10);
            if (*end || pid <= 0 || pid == self || (zygote > 0 && pid == zygote)) continue;
            proc_status ps;
            if (read_status((pid_t)pid, &ps) < 0) continue; /* gone meanwhile */
            left++;
            example = pid;
            state = ps.state;
            kill((pid_t)pid, SIGKILL);
        }
        closedir(d);
        if (!left) return 0;
        if (now_us() >= deadline) {
            snprintf(why, cap, "%d process(es) would not die (pid %ld in state %c)", left, example, state);
            return -1;
        }
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
    }
}

/* Removes every object listed in /proc/sysvipc/NAME (their id is the second column), then checks none is left. */
static int scrub_sysv(const char *name, int kind, char *why, size_t cap) {
    char path[64];
    snprintf(path, sizeof path, "/proc/sysvipc/%s", name);
    for (int pass = 0; pass < 2; pass++) {
        FILE *f = fopen(path, "re");
        if (!f) return 0; /* no SysV IPC in this kernel: nothing can be left either */
        char line[512];
        int listed = 0, first = 1;
        while (fgets(line, sizeof line, f)) {
            if (first) { first = 0; continue; } /* the header */
            long key, id;
            if (sscanf(line, "%ld %ld", &key, &id) != 2) continue;
            listed++;
            if (kind == 0) shmctl((int)id, IPC_RMID, NULL);
            else if (kind == 1) semctl((int)id, 0, IPC_RMID);
            else msgctl((int)id, IPC_RMID, NULL);
        }
        fclose(f);
        if (!listed) return 0;
        if (pass == 1) {
            snprintf(why, cap, "%d SysV %s object(s) cannot be removed", listed, name);
            return -1;
        }
    }
    return 0;
}

/* Removes everything below the directory DIRFD (closed here), not following symlinks. */
static int scrub_tree(int dirfd, int depth, const char *root, char *why, size_t cap) {
    DIR *d = fdopendir(dirfd);
    if (!d) { close(dirfd); snprintf(why, cap, "cannot read a directory below %s: %s", root, strerror(errno)); return -1; }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth >= SCRUB_MAX_DEPTH) {
                snprintf(why, cap, "%s holds directories nested deeper than %d", root, SCRUB_MAX_DEPTH);
                rc = -1;
                break;
            }
            /* A directory its owner made unreadable is still ours to open again (no process is left to race). */
            fchmodat(dirfd, de->d_name, 0700, 0);
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) { snprintf(why, cap, "cannot open %s below %s: %s", de->d_name, root, strerror(errno)); rc = -1; break; }
            rc = scrub_tree(sub, depth + 1, root, why, cap);
            if (rc == 0 && unlinkat(dirfd, de->d_name, AT_REMOVEDIR) < 0) {
                snprintf(why, cap, "cannot remove %s below %s: %s", de->d_name, root, strerror(errno));
                rc = -1;
            }
        } else if (unlinkat(dirfd, de->d_name, 0) < 0 && errno != ENOENT) {
            snprintf(why, cap, "cannot remove %s below %s: %s", de->d_name, root, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

/* Empties PATH (a writable mount of the sandbox), checks it is empty, resets its mode and extended attributes. */
static int scrub_directory(const char *path, uint32_t mode, char *why, size_t cap) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return 0;
    if (fd < 0 && errno == EACCES && mode) {
        /* Its owner (this uid) made it unreadable: give it its mode back first. */
        chmod(path, mode & 07777);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) { snprintf(why, cap, "cannot open %s: %s", path, strerror(errno)); return -1; }
    if (mode && fchmod(fd, mode & 07777) < 0) {
        snprintf(why, cap, "cannot reset the mode of %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int again = dup(fd);
    if (again < 0 || scrub_tree(again, 0, path, why, cap) < 0) {
        if (again < 0) snprintf(why, cap, "cannot empty %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    char names[4096];
    ssize_t n = flistxattr(fd, names, sizeof names);
    if (n < 0 && errno == ERANGE) {
        snprintf(why, cap, "%s carries more extended attributes than the agent removes", path);
        close(fd);
        return -1;
    }
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
        if (!strncmp(names + i, "user.", 5) && fremovexattr(fd, names + i) < 0) {
            snprintf(why, cap, "cannot remove the attribute %s of %s: %s", names + i, path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    /* Checked once more: nothing may be left, whatever readdir skipped while entries went away. */
    DIR *d = fdopendir(fd);
    if (!d) { close(fd); snprintf(why, cap, "cannot read %s: %s", path, strerror(errno)); return -1; }
    rewinddir(d);
    struct dirent *de;
    int left = 0;
    while ((de = readdir(d)) != NULL) if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) left++;
    closedir(d);
    if (left) { snprintf(why, cap, "%s still holds %d entries after emptying it", path, left); return -1; }
    return 0;
}

/* POSIX message queues live in the IPC namespace's mqueue file system, which Docker mounts at /dev/mqueue. */
static int scrub_mqueues(char *why, size_t cap) {
    DIR *d = opendir("/dev/mqueue");
    if (!d) return 0;
    int left = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) left++;
    }
    closedir(d);
    if (left) { snprintf(why, cap, "%d POSIX message queue(s) cannot be removed", left); return -1; }
    return 0;
}

static void handle_scrub(reader *r) {
    char why[600] = "";
    uint32_t flags = rd_u32(r);
    uint32_t kill_wait_ms = rd_u32(r);
    uint32_t ndirs = rd_u32(r);
    char *dirs[SCRUB_MAX_DIRS] = {0};
    uint32_t modes[SCRUB_MAX_DIRS] = {0};
    char *cwd = NULL, **argv = NULL, **envp = NULL;
    uint32_t argc = 0, envc = 0;
    zygote_spec zspec;
    memset(&zspec, 0, sizeof zspec);
    unsigned char *key = NULL;
    size_t key_len = 0;
    if (r->bad || ndirs > SCRUB_MAX_DIRS) { send_error("malformed scrub request"); return; }
    for (uint32_t i = 0; i < ndirs && !r->bad; i++) {
        dirs[i] = rd_str(r, NULL);
        modes[i] = rd_u32(r);
        if (dirs[i] && dirs[i][0] != '/') r->bad = 1;
    }
    uint32_t prime = r->bad ? 0 : rd_u32(r);
    if (prime && !r->bad) {
        cwd = rd_str(r, NULL);
        argc = rd_u32(r);
        if (r->bad || argc == 0 || argc > 64) r->bad = 1;
        argv = r->bad ? NULL : calloc((size_t)argc + 1, sizeof *argv);
        for (uint32_t i = 0; argv && i < argc && !r->bad; i++) argv[i] = rd_str(r, NULL);
        envc = r->bad ? 0 : rd_u32(r);
        if (envc > 4096) r->bad = 1;
        envp = r->bad ? NULL : calloc((size_t)envc + 1, sizeof *envp);
        for (uint32_t i = 0; envp && i < envc && !r->bad; i++) envp[i] = rd_str(r, NULL);
        if (!r->bad) rd_spec(r, &zspec);
        if (!argv || !envp || zspec.script == 0 || zspec.script >= argc) r->bad = 1;
    }
    if (r->bad) { send_error("malformed scrub request"); goto cleanup; }
    if (!contained) { send_error("refusing to scrub: the agent is not alone in its pid namespace"); goto cleanup; }
    if (prime) key = zygote_key(&zspec, argv, envp, cwd, &key_len);
    if (prime && !key) { send_error("scrub: out of memory"); goto cleanup; }

    /* Processes first: nothing may run while the rest is reset. */
    child_discard_spare();
    int keep = (flags & SCRUB_KEEP_ZYGOTE) && key && zyg.pid > 0 && zyg.ready && zyg.clean
               && same_key(zyg.key, zyg.key_len, key, key_len);
    if (keep && !sweep_sparing_zygote()) keep = 0;
    if (keep && zygote_touched()) keep = 0;
    if (!keep) {
        zygote_kill("the sandbox was scrubbed");
        kill(-1, SIGKILL);
    }
    uint64_t deadline = now_us() + (uint64_t)kill_wait_ms * 1000u;
    int rc = scrub_processes(keep ? zyg.pid : 0, deadline, why, sizeof why);
    if (rc == 0) rc = scrub_sysv("shm", 0, why, sizeof why);
    if (rc == 0) rc = scrub_sysv("sem", 1, why, sizeof why);
    if (rc == 0) rc = scrub_sysv("msg", 2, why, sizeof why);
    if (rc == 0) rc = scrub_mqueues(why, sizeof why);
    for (uint32_t i = 0; rc == 0 && i < ndirs; i++) rc = scrub_directory(dirs[i], modes[i], why, sizeof why);
    if (rc == 0) {
        inherited_state now;
        record_inherited(getpid(), &now);
        if (!same_inherited(&agent_started_state, &now)) {
            snprintf(why, sizeof why, "the agent's rlimits, priority, scheduling or CPU affinity were changed "
                                      "(it cannot change them back)");
            rc = -1;
        }
    }
    if (rc == 0) {
        int64_t oom = read_oom_kills();
        if (oom >= 0 && oom_kills_at_scrub >= 0 && oom > oom_kills_at_scrub) {
            snprintf(why, sizeof why, "the sandbox's memory cgroup recorded %lld OOM kill(s) since the last scrub",
                     (long long)(oom - oom_kills_at_scrub));
            rc = -1;
        }
        oom_kills_at_scrub = oom;
    }
    if (rc < 0) { send_error("scrub failed: %s", why); goto cleanup; }

    /* Nothing of an earlier run is left: forget what earlier runs did to the zygote bookkeeping too. */
    zyg.tampered = 0;
    zyg.lost[0] = 0;
    free(zyg.failed_key);
    zyg.failed_key = NULL;
    zyg.failed_key_len = 0;
    zyg.failed[0] = 0;
    if (prime && !keep) {
        free(zyg.key);
        zyg.key = NULL;
        zyg.key_len = 0;
        zygote_start(&zspec, argv, envp, cwd, key, key_len); /* takes the key */
        key = NULL;
        zyg.clean = zyg.pid > 0;
    }
    send_frame('k', NULL, 0);

cleanup:
    free(key);
    free_spec(&zspec);
    for (uint32_t i = 0; i < SCRUB_MAX_DIRS; i++) free(dirs[i]);
    for (uint32_t i = 0; argv && i < argc; i++) free(argv[i]);
    free(argv);
    for (uint32_t i = 0; envp && i < envc; i++) free(envp[i]);
    free(envp);
    free(cwd);
}

/* Whatever the sandbox's launcher left open beyond stdin, stdout and stderr is not the runs' business. */
static void close_inherited_fds(void) {
    if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0) return;
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    for (int fd = 3; fd < max; fd++) close(fd);
}

static int serve(int seccomp) {
    /* Same-uid user code must not read our fds through /proc or ptrace us. */
    prctl(PR_SET_DUMPABLE, 0);
    if (contained && getpid() > 2) {
        fprintf(stderr, "agentexec-agent: --contained needs its own pid namespace (pid %d)\n", (int)getpid());
        return 2;
    }
    close_inherited_fds();
    if (seccomp && install_seccomp() < 0) {
        fprintf(stderr, "agentexec-agent: cannot install the seccomp filter: %s\n", strerror(errno));
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, NULL);

    /* What every run inherits from the agent, and what a scrub checks is still so. */
    record_inherited(getpid(), &agent_started_state);
    oom_kills_at_scrub = read_oom_kills();
    send_frame('h', AGENT_VERSION, (uint32_t)strlen(AGENT_VERSION));
    int refused_next = 0;
    for (;;) {
        unsigned char h[5];
        int ok = read_full(STDIN_FILENO, h, 5);
        if (ok <= 0) return 0; /* controller closed the session */
        uint32_t len = ((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 8) | h[4];
        if (len > MAX_FRAME) { send_error("frame too large"); return 1; }
        unsigned char *payload = malloc(len ? len : 1);
        if (!payload || read_full(STDIN_FILENO, payload, len) <= 0) return 1;
        reader r = {payload, len, 0};
        /* Set by a refused write whose run follows it; holds for that one next request only. */
        int write_refused = refused_next;
        int refused_now = 0;
        switch (h[0]) {
            case 'P': send_frame('k', NULL, 0); break;
            case 'R':
                if (write_refused) send_error("the run was not started: its file could not be written");
                else handle_run(&r);
                break;
            case 'W': {
                uint32_t mode = 0;
                if (handle_write(&r, &mode) < 0 && (mode & WRITE_THEN_RUN)) refused_now = 1;
                break;
            }
            case 'G': handle_get(&r); break;
            case 'S': handle_scrub(&r); break;
            case 'C': break; /* a cancel that lost the race with the run's end: nothing to do, no reply */
            default: send_error("unknown request type %d", h[0]);
        }
        refused_next = refused_now;
        free(payload);
        if (controller_gone) return 0;
        /* Orphans of earlier runs are ours to reap (we may be pid 1). */
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) child_reaped(p, st);
    }
}

static int write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n < 0 ? -1 : 0;
}

static int launch(int argc, char **argv) {
    int i = 2;
    const char *self_token = NULL;
    long drop_uid = -1, drop_gid = -1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { i++; break; }
        if (!strcmp(argv[i], "--self-fd") && i + 1 < argc) {
            self_token = argv[++i];
            continue;
        }
        if (!strcmp(argv[i], "--user") && i + 1 < argc) {
            char tail;
            if (sscanf(argv[++i], "%ld:%ld%c", &drop_uid, &drop_gid, &tail) != 2 || drop_uid <= 0 || drop_gid <= 0
                    || drop_uid > 0x7fffffffL || drop_gid > 0x7fffffffL) {
                fprintf(stderr, "agentexec-agent: --user wants UID:GID, both numeric and not 0, got %s\n", argv[i]);
                return 126;
            }
            continue;
        }
        if (!strcmp(argv[i], "--cgroup") && i + 1 < argc) {
            char path[4096];
            snprintf(path, sizeof path, "%s/cgroup.procs", argv[++i]);
            if (write_text(path, "0") < 0) {
                fprintf(stderr, "agentexec-agent: cannot join cgroup %s: %s\n", argv[i], strerror(errno));
                return 126;
            }
        } else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            char res[32];
            unsigned long long v;
            if (sscanf(argv[++i], "%31[a-z]=%llu", res, &v) != 2) { fprintf(stderr, "agentexec-agent: bad --limit %s\n", argv[i]); return 126; }
            int which = !strcmp(res, "as") ? RLIMIT_AS : !strcmp(res, "nproc") ? RLIMIT_NPROC
                      : !strcmp(res, "fsize") ? RLIMIT_FSIZE : !strcmp(res, "nofile") ? RLIMIT_NOFILE : -1;
            if (which < 0) { fprintf(stderr, "agentexec-agent: unknown limit %s\n", res); return 126; }
            struct rlimit rl = {v, v};
            if (setrlimit(which, &rl) < 0) { fprintf(stderr, "agentexec-agent: setrlimit %s: %s\n", res, strerror(errno)); return 126; }
        } else {
            fprintf(stderr, "agentexec-agent: unknown launch option %s\n", argv[i]);
            return 126;
        }
    }
    if (i >= argc) { fprintf(stderr, "agentexec-agent: launch needs -- PROGRAM\n"); return 126; }
    if (self_token) {
        /* Not O_CLOEXEC: PROGRAM inherits it. This is the very file being run, verified by the JVM. */
        int self = open("/proc/self/exe", O_RDONLY);
        if (self < 0) { fprintf(stderr, "agentexec-agent: cannot open /proc/self/exe: %s\n", strerror(errno)); return 126; }
        static char number[16];
        snprintf(number, sizeof number, "%d", self);
        for (int j = i; j < argc; j++) if (!strcmp(argv[j], self_token)) argv[j] = number;
    }
    if (drop_uid > 0) {
        /* Last, once the cgroups are joined (that needs our privileges): groups, then gid, then uid. */
        if (setgroups(0, NULL) < 0 || setresgid((gid_t)drop_gid, (gid_t)drop_gid, (gid_t)drop_gid) < 0
                || setresuid((uid_t)drop_uid, (uid_t)drop_uid, (uid_t)drop_uid) < 0) {
            fprintf(stderr, "agentexec-agent: cannot become uid %ld gid %ld: %s\n", drop_uid, drop_gid, strerror(errno));
            return 126;
        }
        if (setuid(0) == 0 || getuid() != (uid_t)drop_uid || getgid() != (gid_t)drop_gid) {
            fprintf(stderr, "agentexec-agent: still able to regain root after dropping to uid %ld\n", drop_uid);
            return 126;
        }
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "agentexec-agent: exec %s: %s\n", argv[i], strerror(errno));
    return 127;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "serve")) {
        int seccomp = 0;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--contained")) contained = 1;
            else if (!strcmp(argv[i], "--seccomp")) seccomp = 1;
            else if (!strcmp(argv[i], "--workspace") && i + 1 < argc) workspace = argv[++i];
            else { fprintf(stderr, "agentexec-agent: unknown option %s\n", argv[i]); return 2; }
        }
        return serve(seccomp);
    }
    if (argc >= 2 && !strcmp(argv[1], "launch")) return launch(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "--version")) { puts(AGENT_VERSION); return 0; }
    fprintf(stderr, "usage: agentexec-agent serve [--contained] [--seccomp] [--workspace DIR]"
                    " | launch [--cgroup DIR]... [--limit RES=N]... [--self-fd TOKEN] [--user UID:GID] -- PROGRAM ARGS...\n");
    return 2;
}
