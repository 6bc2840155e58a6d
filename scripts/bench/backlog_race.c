// How many handshakes a listener shrunk to `listen(fd, 0)` lets complete.
//
// The stop without CAP_NET_ADMIN (docs/stopping.md, "Without CAP_NET_ADMIN")
// shrinks each accept queue to room for one connection. This probe asks the
// kernel how strict that "one" is: per trial, a fresh listener that never
// accepts, and two clients on two CPUs that connect at the same instant. It
// prints how often one or both handshakes completed, and for how many of the
// latter both connections were really queued (the others were left connected,
// by a SYN cookie or a dropped final ACK, with no place in the queue). Either
// way, a client past its handshake is reset when the listener closes.
//
//     gcc -O2 -pthread scripts/bench/backlog_race.c -o /tmp/backlog_race
//     /tmp/backlog_race 3000
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in listen_addr;
static pthread_barrier_t start_line;
static int completed;

static void *client(void *arg) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET((int)(long)arg, &cpus);
  sched_setaffinity(0, sizeof cpus, &cpus);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  pthread_barrier_wait(&start_line);
  connect(fd, (struct sockaddr *)&listen_addr, sizeof listen_addr);
  struct pollfd p = {fd, POLLOUT, 0};
  int error = 0;
  socklen_t len = sizeof error;
  if (poll(&p, 1, 50) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && !error)
    __sync_fetch_and_add(&completed, 1);
  pthread_barrier_wait(&start_line); // the listener's queue is counted before anyone closes
  pthread_barrier_wait(&start_line);
  close(fd);
  return NULL;
}

int main(int argc, char **argv) {
  int trials = argc > 1 ? atoi(argv[1]) : 3000;
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    puts("needs two CPUs: one client on each");
    return 0;
  }
  int outcomes[3] = {0}, both_queued = 0;
  pthread_barrier_init(&start_line, NULL, 3);
  for (int t = 0; t < trials; t++) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    listen_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof listen_addr;
    bind(listener, (struct sockaddr *)&listen_addr, len);
    getsockname(listener, (struct sockaddr *)&listen_addr, &len);
    listen(listener, 128);
    listen(listener, 0); // what the fallback does
    completed = 0;
    pthread_t a, b;
    pthread_create(&a, NULL, client, (void *)0L);
    pthread_create(&b, NULL, client, (void *)1L);
    pthread_barrier_wait(&start_line); // go
    pthread_barrier_wait(&start_line); // both have their answer
    fcntl(listener, F_SETFL, O_NONBLOCK);
    int queued = 0, conn;
    while ((conn = accept(listener, NULL, NULL)) >= 0) {
      close(conn);
      queued++;
    }
    pthread_barrier_wait(&start_line);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    outcomes[completed]++;
    if (completed == 2 && queued == 2) both_queued++;
    close(listener);
  }
  printf("%d trials, two clients connecting at once to a listen(fd, 0) queue:\n", trials);
  printf("  one handshake completed:  %d\n", outcomes[1]);
  printf("  both completed:           %d (both queued: %d; one with no place: %d)\n", outcomes[2],
         both_queued, outcomes[2] - both_queued);
  printf("  none completed:           %d\n", outcomes[0]);
  return 0;
}
