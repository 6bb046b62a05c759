package memnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A served handler answers over the network inside a bubble, fake time
// advances while the client waits for an answer (an hour-long handler takes
// exactly an hour), and Close ends every goroutine of the server and of the
// client's connections: synctest.Test fails if one is left blocked.
func TestServeInABubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if r.URL.Path == "/slow" {
				time.Sleep(time.Hour)
			}
			fmt.Fprintf(w, "%d", len(body))
		}))
		cl := ClientFor(srv.URL)
		if cl == nil {
			t.Fatalf("no client for the open server at %s", srv.URL)
		}
		post := func(path string, body string) (string, error) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
			if err != nil {
				return "", err
			}
			resp, err := cl.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}
		// Bodies larger than the transport's 4 KiB write buffer, on one
		// connection after another (see sendBuffered).
		big := strings.Repeat("x", 64<<10)
		for i := 0; i < 20; i++ {
			if got, err := post("/", big); err != nil || got != "65536" {
				t.Fatalf("request %d: %q, %v", i, got, err)
			}
		}
		start := time.Now()
		if got, err := post("/slow", "abc"); err != nil || got != "3" {
			t.Fatalf("slow request: %q, %v", got, err)
		}
		if took := time.Since(start); took != time.Hour+time.Nanosecond {
			t.Fatalf("an hour-long handler answered after %v (the hour and memnet's nanosecond)", took)
		}
		srv.Close()
		// Let the client's connection goroutines see the close and drop
		// their idle connections, so that the next request dials.
		synctest.Wait()
		if ClientFor(srv.URL) != nil {
			t.Error("a closed server still has a client")
		}
		if _, err := post("/", "x"); !errors.Is(err, net.ErrClosed) {
			t.Errorf("request to a closed server: %v, want net.ErrClosed", err)
		}
	})
}

func TestClientForUnknownEndpoint(t *testing.T) {
	if c := ClientFor("http://127.0.0.1:4566"); c != nil {
		t.Fatalf("a real address got an in-memory client: %v", c)
	}
}

// Each network has its own address, so that servers in parallel tests do
// not share clients.
func TestAddressesAreUnique(t *testing.T) {
	a, b := Listen(), Listen()
	defer a.Close()
	defer b.Close()
	if a.Addr().String() == b.Addr().String() || a.Addr().Network() != "memnet" {
		t.Fatalf("addresses %v and %v", a.Addr(), b.Addr())
	}
	if _, _, err := net.SplitHostPort(a.Addr().String()); err != nil {
		t.Fatalf("address %q is not host:port: %v", a.Addr(), err)
	}
}
