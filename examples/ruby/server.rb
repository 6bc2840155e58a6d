# A Ruby worker for arbiter, no gems: a plain socket server on the socket
# handed over at fd 3 with a tiny HTTP/1.1 responder (one request per
# connection), READY=1 over NOTIFY_SOCKET when it is set, graceful stop on
# TERM (in-flight requests finish, then exit 0).
require "io/wait"
require "socket"

WORKER_ID = ENV.fetch("ARBITER_WORKER_ID", "?")

# Send one sd_notify message if NOTIFY_SOCKET is set.
def notify(message)
  path = ENV["NOTIFY_SOCKET"]
  return if path.nil? || path.empty?
  path = "\0" + path[1..] if path.start_with?("@") # abstract namespace
  Socket.open(:UNIX, :DGRAM) { |s| s.send(message, 0, Socket.sockaddr_un(path)) }
rescue SystemCallError => e
  warn "notify: #{e.message}"
end

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def handle(client)
  # A client gets 5 s to send its request, 1 s once draining: a connection
  # left silent would otherwise hold the drain. (Never less than 1 s: the
  # request of a client that just connected is on its way.)
  opened = now
  until client.wait_readable(0.1)
    return if now - opened > ($draining ? 1 : 5)
  end
  request_line = client.gets
  return if request_line.nil?
  # Read (and ignore) the headers up to the empty line.
  while (line = client.gets) && line != "\r\n" && line != "\n"; end
  body = "hello from ruby worker #{WORKER_ID}\n"
  client.write "HTTP/1.1 200 OK\r\n" \
               "Content-Type: text/plain; charset=utf-8\r\n" \
               "Content-Length: #{body.bytesize}\r\n" \
               "Connection: close\r\n\r\n#{body}"
rescue IOError, SystemCallError
  # The client went away.
ensure
  client.close
end

server = Socket.for_fd(3)
# TERM wakes the accept loop through a pipe; the loop then stops accepting.
wake_r, wake_w = IO.pipe
trap("TERM") { wake_w.write_nonblock(".", exception: false) }
# arbiter forwards USR1 to every worker to reopen log files (after rotation);
# its default action ends the process. This worker writes no log file, so
# there is nothing to reopen: ignore it.
trap("USR1", "IGNORE")

notify("READY=1")
threads = []
loop do
  ready, = IO.select([server, wake_r])
  break if ready.include?(wake_r)
  # Another worker may have taken the connection first: then there is none.
  client, = server.accept_nonblock(exception: false)
  next if client == :wait_readable
  threads << Thread.new(client) { |c| handle(c) }
  threads.select!(&:alive?)
end
$draining = true
notify("STOPPING=1")
server.close
threads.each(&:join) # let the requests in flight finish
exit 0
