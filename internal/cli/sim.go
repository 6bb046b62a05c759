package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
)

type simOpts struct {
	scenario string
	addr     string
	scale    float64
}

// simCommand is `patchgate sim`.
func simCommand() *Command {
	return &Command{
		Name:    "sim",
		Summary: "Serve patchgate's AWS simulator on loopback (sim serve)",
		Usage: "patchgate sim serve [--scenario FILE] [--addr 127.0.0.1:PORT] [--scale N]\n\n" +
			"Serves SSM and STS over their real wire protocols for the unmodified AWS SDKs and CLIs. Without\n" +
			"--scenario it serves the built-in demo fleet. The scenario format is in docs/simulator.md.",
		Flags: func(fs *flag.FlagSet) any {
			o := &simOpts{}
			fs.StringVar(&o.scenario, "scenario", "", "scenario YAML file (default: the built-in demo scenario)")
			fs.StringVar(&o.addr, "addr", "127.0.0.1:4566", "loopback address to listen on")
			fs.Float64Var(&o.scale, "scale", 1, "simulated seconds per real second (60 turns a 40-minute patch into 40 seconds)")
			return o
		},
		Run: runSim,
	}
}

func runSim(ctx context.Context, env Env, opts any, args []string) int {
	o := opts.(*simOpts)
	if len(args) != 1 || args[0] != "serve" {
		fmt.Fprintln(env.Stderr, "usage: patchgate sim serve [--scenario FILE] [--addr 127.0.0.1:PORT]")
		return ExitUsage
	}
	sc := awssim.DemoScenario(awssim.DemoOptions{})
	if o.scenario != "" {
		var err error
		if sc, err = awssim.LoadScenario(o.scenario); err != nil {
			fmt.Fprintf(env.Stderr, "patchgate sim: %v\n", err)
			return ExitUsage
		}
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil || !net.ParseIP(host).IsLoopback() && host != "localhost" {
		fmt.Fprintf(env.Stderr, "patchgate sim: --addr must be a loopback address like 127.0.0.1:4566, not %q\n", o.addr)
		return ExitUsage
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate sim: %v\n", err)
		return ExitUsage
	}
	sim := awssim.New(sc, clock.NewScaled(time.Now().UTC(), o.scale))
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(env.Stdout, "patchgate AWS simulator serving %d accounts at %s\n\n", len(sc.Accounts), url)
	fmt.Fprintf(env.Stdout, "export AWS_ENDPOINT_URL=%s\nexport AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=sim\nexport AWS_REGION=us-east-1\n\n", url, awssim.AccessKeyFor(sc.Accounts[0]))
	fmt.Fprintf(env.Stdout, "Calls per operation: %s/_sim/stats. Stop with Ctrl-C.\n", url)
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(env.Stderr, "patchgate sim: %v\n", err)
		return ExitUsage
	}
	return ExitOK
}
