package bench

import (
	"context"
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
	srv, cli := net.Pipe()
	p.mu.Lock()
	p.open = append(p.open, srv, cli)
	p.mu.Unlock()
	select {
	case p.conns <- srv:
		return cli, nil
	case <-p.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// client is an HTTP client for the SDK that dials the pipe network; conns
// caps the connections, as the SDK's default transport does per host.
func (p *pipeNet) client(conns int) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext, tr.DialTLSContext = p.dial, nil
		tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = conns, conns
		tr.ForceAttemptHTTP2 = false
		// No idle timeout: on the fake clock a 90-second idle timer fires
		// at once, and closing a pipe a request has just picked up fails
		// the call mid-response (a race TCP would turn into a retry).
		tr.IdleConnTimeout = 0
	})
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "sim" }
