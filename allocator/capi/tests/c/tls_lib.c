/* A shared object with thread-local storage. The `tls` tests load many
 * copies of it with dlopen: each copy's TLS is dynamic, allocated with
 * malloc (homing's) by the dynamic loader on the first access from each
 * thread, and freed with free when the thread exits. */
__thread char tls_buffer[256];
__thread long tls_counter = 5;

/* Bumps this thread's counter of this copy: 6 on a thread's first call. */
long tls_bump(void) {
    tls_buffer[tls_counter % 256]++;
    return ++tls_counter;
}
