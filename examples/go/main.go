// A Go worker for arbiter, standard library only: net/http on the socket
// handed over at fd 3, READY=1 (and WATCHDOG=1 when asked) over NOTIFY_SOCKET
// when it is set, graceful http.Server.Shutdown on SIGTERM.
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
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		<-stop
		notify("STOPPING=1")
		// Stop accepting, close idle keep-alive connections, wait for the rest.
		// arbiter's graceful_timeout (then SIGKILL) bounds how long this may take.
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
	if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
		log.Printf("serve: %v", err)
		os.Exit(1)
	}
	<-done
}
