// Package lock keeps two patchgate runs from patching the same policy in the
// same account and region at once. A lock is an SSM Parameter Store parameter
// created with Overwrite=false, which fails with ParameterAlreadyExists when
// another run holds it: Parameter Store is the arbiter, so no extra service
// or table is needed.
package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/uuid"
)

// ParameterStore is the part of SSM the lock uses.
type ParameterStore interface {
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	DeleteParameter(ctx context.Context, in *ssm.DeleteParameterInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
}

// Prefix is the parameter path under which locks live.
const Prefix = "/patchgate/locks/"

// Name is the lock parameter for a policy. Parameter Store is per account
// and region, so the policy name alone makes the lock per policy x account x region.
func Name(policy string) string { return Prefix + policy }

// Info is what a lock records about its holder.
type Info struct {
	LockID  string    `json:"lockId"` // random per acquisition; `patchgate unlock` must name it
	RunID   string    `json:"runId"`
	RunURL  string    `json:"runUrl,omitempty"`
	Started time.Time `json:"started"`
	Expires time.Time `json:"expires"`
}

// HeldError says another run holds the lock.
type HeldError struct {
	Parameter string
	Holder    Info
	Now       time.Time
}

func (e *HeldError) Error() string {
	state := fmt.Sprintf("expires %s", e.Holder.Expires.UTC().Format(time.RFC3339))
	if !e.Holder.Expires.IsZero() && e.Now.After(e.Holder.Expires) {
		state = fmt.Sprintf("EXPIRED at %s, probably left by a run that was killed", e.Holder.Expires.UTC().Format(time.RFC3339))
	}
	where := e.Holder.RunURL
	if where == "" {
		where = "run " + e.Holder.RunID
	}
	return fmt.Sprintf("lock %s is held by %s (run id %s, started %s, %s); wait for it, or if that run is gone release it with "+
		"`patchgate unlock --lock-id %s` and the same --policy/--account/--region",
		e.Parameter, where, e.Holder.RunID, e.Holder.Started.UTC().Format(time.RFC3339), state, e.Holder.LockID)
}

// Lock is a held lock.
type Lock struct {
	store ParameterStore
	Param string
	Info  Info
	// Resumed is true when the lock already belonged to this run id (a re-run
	// after a crash), so it was taken over rather than created.
	Resumed bool
}

// Acquire takes the lock for policy on behalf of runID. ttl says how long
// the run may reasonably take; an expired lock is reported as such but never
// broken automatically (two runs racing to break it could both win).
func Acquire(ctx context.Context, store ParameterStore, policy, runID, runURL string, ttl time.Duration, now time.Time) (*Lock, error) {
	info := Info{LockID: newID(), RunID: runID, RunURL: runURL, Started: now.UTC(), Expires: now.Add(ttl).UTC()}
	value, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	param := Name(policy)
	_, err = store.PutParameter(ctx, &ssm.PutParameterInput{
		Name:        aws.String(param),
		Value:       aws.String(string(value)),
		Type:        ssmtypes.ParameterTypeString,
		Overwrite:   aws.Bool(false),
		Description: aws.String("patchgate run lock; release a stale one with `patchgate unlock`"),
	})
	if err == nil {
		return &Lock{store: store, Param: param, Info: info}, nil
	}
	var exists *ssmtypes.ParameterAlreadyExists
	if !errors.As(err, &exists) {
		return nil, fmt.Errorf("taking lock %s with ssm:PutParameter: %w", param, err)
	}
	holder, err := read(ctx, store, param)
	if err != nil {
		return nil, err
	}
	switch {
	case holder.LockID == info.LockID:
		// Our own PutParameter succeeded but its response was lost and the
		// SDK's retry saw the parameter we had just created.
		return &Lock{store: store, Param: param, Info: info}, nil
	case holder.RunID != "" && holder.RunID == runID:
		// The same run id again: a re-run resuming after a crash.
		return &Lock{store: store, Param: param, Info: holder, Resumed: true}, nil
	}
	return nil, &HeldError{Parameter: param, Holder: holder, Now: now}
}

// Release deletes the lock if it is still this run's. It uses its own
// context so that it still runs when the run's context was cancelled.
func (l *Lock) Release(ctx context.Context) error {
	if l == nil {
		return nil
	}
	holder, err := read(ctx, l.store, l.Param)
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return err
	}
	if holder.LockID != l.Info.LockID {
		return fmt.Errorf("lock %s now belongs to run %s (lock id %s); leaving it", l.Param, holder.RunID, holder.LockID)
	}
	return deleteParam(ctx, l.store, l.Param)
}

// Unlock releases a lock by hand. lockID must match the holder's, so an
// operator cannot release a live run's lock by mistake.
func Unlock(ctx context.Context, store ParameterStore, policy, lockID string) (Info, error) {
	param := Name(policy)
	holder, err := read(ctx, store, param)
	if err != nil {
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return Info{}, fmt.Errorf("no lock %s: nothing to release", param)
		}
		return Info{}, err
	}
	if holder.LockID != lockID {
		return holder, fmt.Errorf("lock %s has lock id %s (run %s), not %s: check the id in the run's report", param, holder.LockID, holder.RunID, lockID)
	}
	return holder, deleteParam(ctx, store, param)
}

func read(ctx context.Context, store ParameterStore, param string) (Info, error) {
	out, err := store.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param)})
	if err != nil {
		return Info{}, fmt.Errorf("reading lock %s with ssm:GetParameter: %w", param, err)
	}
	var info Info
	if out.Parameter == nil || json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &info) != nil {
		// Not ours to interpret: someone wrote the parameter by hand. Treat it
		// as held, with the raw value as the holder, rather than overwrite it.
		raw := ""
		if out.Parameter != nil {
			raw = aws.ToString(out.Parameter.Value)
		}
		return Info{RunID: "unknown (value " + strings.TrimSpace(trim(raw, 80)) + ")"}, nil
	}
	return info, nil
}

func deleteParam(ctx context.Context, store ParameterStore, param string) error {
	_, err := store.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(param)})
	var nf *ssmtypes.ParameterNotFound
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("releasing lock %s with ssm:DeleteParameter: %w", param, err)
	}
	return nil
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// newID returns a random UUID: unguessable, so a lock id cannot be typed by accident.
func newID() string { return uuid.NewString() }
