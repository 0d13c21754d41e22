#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/io_uring.h>

static const char *name(long r, int e) {
    if (r >= 0) return "ok";
    return e == EPERM ? "EPERM" : e == ENOSYS ? "ENOSYS" : "other";
}

/*
 * getpid through the i386 entry (int 0x80), in a child: a kernel without a usable i386 entry (booted with
 * ia32_emulation=0, or a guest whose hypervisor does not deliver it) kills the caller with SIGSEGV, which is then the
 * answer, outside the sandbox as inside.
 */
static const char *i386_getpid(void) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        long r;
        __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
        _exit(r == -EPERM ? 1 : r < 0 ? 2 : 0);
    }
    int status;
    if (child < 0 || waitpid(child, &status, 0) != child) return "other";
    if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGSEGV ? "SIGSEGV" : "other";
    return WEXITSTATUS(status) == 1 ? "EPERM" : WEXITSTATUS(status) == 0 ? "ok" : "other";
}

int main(void) {
    long r;
    printf("i386 %s\n", i386_getpid());
    errno = 0; r = syscall(0x40000000L | SYS_getpid); printf("x32 %s\n", name(r, errno));
    errno = 0; r = syscall(SYS_clone3, NULL, 0); printf("clone3 %s\n", name(r, errno));
    struct io_uring_params params = {0};
    errno = 0; r = syscall(SYS_io_uring_setup, 1, &params); printf("io_uring_setup %s\n", name(r, errno));
    errno = 0; r = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0); printf("vsock %s\n", name(r, errno));
    errno = 0; r = personality(0xffffffff); printf("personality query %s\n", name(r, errno));
    errno = 0; r = syscall(SYS_clone, 0x10000000L /* CLONE_NEWUSER */ | 17, NULL, NULL, NULL, 0);
    if (r == 0) _exit(0);
    printf("clone newuser %s\n", name(r, errno));
    return 0;
}
