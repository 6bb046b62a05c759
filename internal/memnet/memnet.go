// Package memnet is an in-memory network for tests: a server's listener and
// its clients' dialer, over net.Pipe. Inside a testing/synctest bubble a
// goroutine waiting on one of its connections is durably blocked (it waits
// on a channel of the bubble), so fake time can advance while the SDK waits
// for the simulator; a goroutine reading a loopback socket is not, and the
// bubble's clock would stand still.
//
// It imports neither testing nor net/http/httptest: the simulator's Config
// looks up the clients of served endpoints here, and the simulator is part
// of the patchgate binary (demo, sim serve).
package memnet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Network is one in-memory network: a listener for one server and the
// dialer of its clients. Its address is unique in the process.
type Network struct {
	addr  Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	mu   sync.Mutex
	open []net.Conn
}

// networks numbers the networks, so that each has its own host name.
var networks atomic.Int64

// Listen makes a new network. Inside a bubble, make it inside the bubble
// (its channels belong to the bubble that makes them).
func Listen() *Network {
	return &Network{addr: Addr(fmt.Sprintf("memnet-%d.invalid:80", networks.Add(1))), conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next connection dialled on the network.
func (n *Network) Accept() (net.Conn, error) {
	select {
	case c := <-n.conns:
		return c, nil
	case <-n.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes every connection, so that the client's
// and the server's connection goroutines end and a bubble can exit.
func (n *Network) Close() error {
	n.once.Do(func() { close(n.done) })
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.open {
		_ = c.Close()
	}
	n.open = nil
	return nil
}

// Addr is the network's address, host:port.
func (n *Network) Addr() net.Addr { return n.addr }

// DialContext connects to the network's server, whatever the address (the
// network has one server).
func (n *Network) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	srv, end := net.Pipe()
	cli := newSendBuffered(end)
	n.mu.Lock()
	n.open = append(n.open, srv, cli)
	n.mu.Unlock()
	select {
	case n.conns <- srv:
		return cli, nil
	case <-n.done:
		_, _ = srv.Close(), cli.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		_, _ = srv.Close(), cli.Close()
		return nil, ctx.Err()
	}
}

// HTTPClient is an HTTP client for the SDK that dials the network; maxConns
// caps the connections (0: no cap, the SDK's default per host).
func (n *Network) HTTPClient(maxConns int) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext, tr.DialTLSContext = n.DialContext, nil
		tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = maxConns, maxConns
		tr.ForceAttemptHTTP2 = false
		// No idle timeout: on a fake clock a 90-second idle timer fires at
		// every long wait, and the client would redial after each.
		tr.IdleConnTimeout = 0
	})
}

// Addr is a network's address.
type Addr string

func (Addr) Network() string  { return "memnet" }
func (a Addr) String() string { return string(a) }

// sendBuffered gives the client's end of a pipe the send buffer a TCP
// socket has: Write queues a copy and returns, and a goroutine hands the
// bytes to the server in order. net.Pipe alone has no buffer: a Write
// returns only once the server has read the bytes.
//
// Without it, a request body larger than the transport's 4 KiB write
// buffer (ListFindings and ListCoverage with a batch of instance IDs,
// DescribeInstancePatchStates) goes to the pipe straight from the
// transport's writeLoop, whose last Write returns only when the simulator's
// handler reads the last byte, just before it answers. The writeLoop then
// still reads the body to EOF (transferWriter.writeBody's check for extra
// bytes) while the response reaches the SDK, which closes the request body
// as soon as the round trip returns (smithy-go's ClientHandler.Handle).
// When the close wins, smithy-go's safe body returns io.EOF from WriteTo,
// the writeLoop takes it for a failed write and closes the connection, and
// the SDK, reading the response body, gets "io: read/write on closed pipe".
// With the buffer the writeLoop finishes the request while the simulator's
// handler sleeps its latency (fake time advances only once it is blocked),
// as it would over TCP.
type sendBuffered struct {
	net.Conn
	queue  chan []byte
	closed chan struct{} // closed by Close
	once   sync.Once
	failed chan struct{} // closed when a delivery fails; err says why
	err    error
}

func newSendBuffered(c net.Conn) *sendBuffered {
	b := &sendBuffered{Conn: c, queue: make(chan []byte, 64), closed: make(chan struct{}), failed: make(chan struct{})}
	go b.deliver()
	return b
}

// deliver writes the queued bytes to the pipe until the connection is
// closed or a write fails (the server closed its end).
func (b *sendBuffered) deliver() {
	for {
		select {
		case p := <-b.queue:
			if _, err := b.Conn.Write(p); err != nil {
				b.err = err
				close(b.failed)
				return
			}
		case <-b.closed:
			return
		}
	}
}

func (b *sendBuffered) Write(p []byte) (int, error) {
	select {
	case <-b.closed:
		return 0, io.ErrClosedPipe
	case <-b.failed:
		return 0, b.err
	default:
	}
	if len(p) == 0 {
		return 0, nil
	}
	select {
	case b.queue <- append([]byte(nil), p...):
		return len(p), nil
	case <-b.closed:
		return 0, io.ErrClosedPipe
	case <-b.failed:
		return 0, b.err
	}
}

// Close closes the pipe at once; bytes still queued are dropped, as a
// reset would.
func (b *sendBuffered) Close() error {
	b.once.Do(func() { close(b.closed) })
	return b.Conn.Close()
}

// Server is an http.Handler served on a network of its own.
type Server struct {
	// URL is the server's endpoint ("http://memnet-N.invalid:80"), for an
	// SDK's BaseEndpoint; only Client (or ClientFor(URL)) reaches it.
	URL string
	// Client is an HTTP client for the SDK that reaches the server.
	Client *awshttp.BuildableClient

	net *Network
}

// served maps the URL of each open Server to it, for ClientFor.
var (
	servedMu sync.Mutex
	served   = map[string]*Server{}
)

// Serve serves h on a new network until Close. Inside a bubble, call it
// and Close inside the bubble.
func Serve(h http.Handler) *Server {
	n := Listen()
	s := &Server{URL: "http://" + n.Addr().String(), Client: n.HTTPClient(0), net: n}
	go func() { _ = (&http.Server{Handler: settled(h)}).Serve(n) }()
	servedMu.Lock()
	served[s.URL] = s
	servedMu.Unlock()
	return s
}

// settled reads a request's body to its end and sleeps a nanosecond before
// h answers. In a bubble the sleep ends only once every other goroutine is
// blocked, so the client's writeLoop has finished its request before the
// response reaches the SDK (see sendBuffered for what goes wrong when it
// has not). A handler that sleeps its own latency first (the simulator's
// Scenario.Latency) had the same effect; without it the connection was
// intermittently closed under the response on a busy machine.
func settled(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "memnet: reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		time.Sleep(time.Nanosecond)
		h.ServeHTTP(w, r)
	})
}

// HTTPClient is another client of the server, with its own connections;
// maxConns caps them (0: no cap).
func (s *Server) HTTPClient(maxConns int) *awshttp.BuildableClient { return s.net.HTTPClient(maxConns) }

// Close stops the server and closes its connections.
func (s *Server) Close() {
	servedMu.Lock()
	delete(served, s.URL)
	servedMu.Unlock()
	_ = s.net.Close()
}

// ClientFor returns the Client of the open Server at endpoint, or nil when
// no Server of this package serves it (a real address).
func ClientFor(endpoint string) aws.HTTPClient {
	servedMu.Lock()
	defer servedMu.Unlock()
	if s, ok := served[endpoint]; ok {
		return s.Client
	}
	return nil
}
