// A Go worker for arbiter, standard library only: net/http on the socket
// handed over at fd 3, READY=1 (and WATCHDOG=1 when asked) over NOTIFY_SOCKET
// when it is set, and a drain on SIGTERM that fails no request.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// notify sends one sd_notify message if NOTIFY_SOCKET is set.
func notify(message string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract namespace
	}
	conn, err := net.Dial("unixgram", path)
	if err != nil {
		log.Printf("notify: %v", err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(message)); err != nil {
		log.Printf("notify: %v", err)
	}
}

func main() {
	id := os.Getenv("ARBITER_WORKER_ID")
	// net.FileListener dups fd 3; the original can be closed afterwards.
	file := os.NewFile(3, "listener")
	listener, err := net.FileListener(file)
	if err != nil {
		log.Printf("fd 3 is not a listening socket: %v", err)
		os.Exit(3) // arbiter: worker boot error
	}
	file.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello from go worker %s\n", id)
	})
	// Once draining, every answer carries Connection: close, and net/http
	// closes the connection after it.
	var draining atomic.Bool
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		mux.ServeHTTP(w, r)
	})
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	// Connections that have not sent a byte yet: Shutdown would wait 5 s for
	// them, so the drain closes them itself after its grace.
	var mu sync.Mutex
	fresh := map[net.Conn]bool{}
	server.ConnState = func(c net.Conn, state http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if state == http.StateNew {
			fresh[c] = true
		} else {
			delete(fresh, c)
		}
	}

	// The drain (docs/worker-protocol.md): neither Shutdown nor
	// SetKeepAlivesEnabled(false) may come first, as both close idle
	// keep-alive connections at once, resetting a client that is sending its
	// next request on one. So: stop accepting, let each busy connection close
	// after its answer, and only after a grace close the connections still
	// silent and let Shutdown close those still idle and wait for the rest.
	// arbiter's graceful_timeout bounds it all.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	// arbiter forwards USR1 to every worker to reopen log files (after
	// rotation). Go already ignores it unless notified; said explicitly, as
	// its default action elsewhere ends the process. No log file here.
	signal.Ignore(syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		<-stop
		notify("STOPPING=1")
		draining.Store(true)
		listener.Close()
		time.Sleep(time.Second)
		mu.Lock()
		for c := range fresh {
			c.Close()
		}
		mu.Unlock()
		if err := server.Shutdown(context.Background()); err != nil {
			log.Printf("shutdown: %v", err)
		}
		close(done)
	}()

	notify("READY=1")
	if usec, err := strconv.Atoi(os.Getenv("WATCHDOG_USEC")); err == nil && usec > 0 {
		go func() {
			for range time.Tick(time.Duration(usec) * time.Microsecond / 2) {
				notify("WATCHDOG=1")
			}
		}()
	}
	// Serve returns when the drain closes the listener; the drain goes on.
	if err := server.Serve(listener); !draining.Load() && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("serve: %v", err)
		os.Exit(1)
	}
	<-done
}
