#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/io_uring.h>

static const char *name(long r, int e) {
    if (r >= 0) return "ok";
    return e == EPERM ? "EPERM" : e == ENOSYS ? "ENOSYS" : "other";
}

int main(void) {
    long r;
    __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
    printf("i386 %s\n", r == -EPERM ? "EPERM" : r < 0 ? "other" : "ok");
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
