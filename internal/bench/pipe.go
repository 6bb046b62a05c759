package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// pipeNet is an in-memory network: the simulator serves on its listener and
// the SDK dials it. Everything lives in the synctest bubble, so a goroutine
// waiting on a connection is durably blocked and fake time can advance.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	mu   sync.Mutex
	open []net.Conn
}

func newPipeNet() *pipeNet { return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})} }

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes every connection, so that the client's
// and the server's connection goroutines end and the bubble can exit.
func (p *pipeNet) Close() error {
	p.once.Do(func() { close(p.done) })
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		_ = c.Close()
	}
	p.open = nil
	return nil
}

func (p *pipeNet) Addr() net.Addr { return pipeAddr{} }

func (p *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	srv, end := net.Pipe()
	cli := newSendBuffered(end)
	p.mu.Lock()
	p.open = append(p.open, srv, cli)
	p.mu.Unlock()
	select {
	case p.conns <- srv:
		return cli, nil
	case <-p.done:
		_, _ = srv.Close(), cli.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		_, _ = srv.Close(), cli.Close()
		return nil, ctx.Err()
	}
}

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

// client is an HTTP client for the SDK that dials the pipe network; conns
// caps the connections, as the SDK's default transport does per host.
func (p *pipeNet) client(conns int) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext, tr.DialTLSContext = p.dial, nil
		tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = conns, conns
		tr.ForceAttemptHTTP2 = false
		// No idle timeout: on the fake clock a 90-second idle timer fires
		// at every long wait, and the run would redial after each.
		tr.IdleConnTimeout = 0
	})
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "sim" }
