/* mk8s pause: PID 1 of a pod sandbox.
 *
 * It holds the pod's namespaces open and does nothing else: it reaps every child that exits
 * (orphans are re-parented to it when the pod shares one PID namespace), exits 0 on SIGTERM or
 * SIGINT, and otherwise sleeps in pause(). Built with -static so the image needs no libc. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_terminate(int signo) {
  (void)signo;
  _exit(0);
}

static void on_child(int signo) {
  (void)signo;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    static const char version[] = "mk8s pause\n";
    (void)!write(STDOUT_FILENO, version, sizeof(version) - 1);
    return 0;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_terminate;
  if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) return 1;
  sa.sa_handler = on_child;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGCHLD, &sa, NULL) != 0) return 1;
  for (;;) pause();
}
