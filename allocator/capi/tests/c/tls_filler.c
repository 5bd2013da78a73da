/* A shared object with FILLER_BYTES bytes of initial-exec TLS (so it is
 * marked STATIC_TLS, as libhoming.so is): the dlopen test loads copies of
 * it to use up the static TLS surplus. */
#ifndef FILLER_BYTES
#error "build with -DFILLER_BYTES=<n>"
#endif

__attribute__((tls_model("initial-exec"))) __thread long filler[FILLER_BYTES / sizeof(long)];

/* Touches this thread's copy; returns its size in bytes. */
long filler_touch(void) {
    filler[0]++;
    return (long)sizeof filler;
}
