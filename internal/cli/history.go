package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/patchgate/patchgate/internal/history"
	"github.com/patchgate/patchgate/internal/report"
	"github.com/patchgate/patchgate/internal/result"
)

// historyStore opens s3://bucket/prefix with cfg's credentials. Against
// an endpoint override (the simulator, moto) S3 is addressed path-style.
func historyStore(cfg aws.Config, url, endpoint string) (*history.Store, error) {
	bucket, prefix, err := history.ParseURL(url)
	if err != nil {
		return nil, err
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = endpoint != "" })
	return &history.Store{S3: client, Bucket: bucket, Prefix: prefix}, nil
}

// recordHistory keeps the run in the history store; a failure is said
// plainly and does not change the run's outcome.
func recordHistory(ctx context.Context, env Env, cfg aws.Config, url, endpoint string, r *result.Run, log *slog.Logger) {
	st, err := historyStore(cfg, url, endpoint)
	if err == nil {
		err = st.Record(ctx, r, report.Summarize(r))
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate run: the result was not added to the history (%v); the run's outcome stands\n", err)
		return
	}
	log.Info("result added to the history", "store", url, "policies", len(r.Policies))
}

// renderHistory is the last n runs of each named policy, rendered.
func renderHistory(ctx context.Context, st *history.Store, policies []string, n int) (string, error) {
	var b strings.Builder
	for i, p := range policies {
		es, err := st.Last(ctx, p, n)
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(report.History(p, es))
	}
	return b.String(), nil
}
