package lock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// IntentPrefix is the parameter path of send intents.
const IntentPrefix = "/patchgate/intents/"

// IntentName is the intent parameter of a policy (per account and region,
// as Parameter Store is). A target sends one wave at a time, so one
// parameter holds its only open intent.
func IntentName(policy string) string { return IntentPrefix + policy }

// Intent is the write-ahead record of a wave's SendCommands: written
// before the wave sends anything and deleted once every command of it is
// known. An intent still there when a run starts means a run stopped
// between sending and recording (crash, cancelled job, a send whose
// outcome it could not learn): commands may exist that no listing shows
// yet, and they must be looked for before anything is sent.
type Intent struct {
	RunID  string `json:"runId"`
	Policy string `json:"policy"`
	Phase  string `json:"phase"`
	Wave   int    `json:"wave"`
	// Chunks is how many SendCommands the wave makes; their Comments
	// follow from the run id, policy, phase, wave and chunk number.
	Chunks int `json:"chunks"`
	// Digest is a SHA-256 over the wave's sorted instance ids.
	Digest string `json:"digest"`
	// InstanceIDs are each chunk's instances, when they fit in the
	// parameter (4 KB); the Comments alone identify the commands.
	InstanceIDs [][]string `json:"instanceIds,omitempty"`
	At          time.Time  `json:"at"` // before the wave's first SendCommand
}

// Digest returns the digest of a set of instance ids.
func Digest(ids []string) string {
	s := append([]string(nil), ids...)
	sort.Strings(s)
	sum := sha256.Sum256([]byte(strings.Join(s, ",")))
	return hex.EncodeToString(sum[:16])
}

// maxIntent keeps an intent inside a standard parameter's 4 KB.
const maxIntent = 4000

// PutIntent records in before the wave's first SendCommand. It overwrites:
// a target sends one wave at a time, and the intent it replaces was settled.
func PutIntent(ctx context.Context, store ParameterStore, in Intent, optFns ...func(*ssm.Options)) error {
	value, err := json.Marshal(in)
	if err == nil && len(value) > maxIntent {
		in.InstanceIDs = nil
		value, err = json.Marshal(in)
	}
	if err != nil {
		return err
	}
	name := IntentName(in.Policy)
	_, err = store.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(string(value)), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
		Description: aws.String("patchgate send intent: a SendCommand that may have run; a later run reconciles it"),
	}, optFns...)
	if err != nil {
		return fmt.Errorf("recording the intent to send wave %d of %s/%s in %s with ssm:PutParameter: %w", in.Wave, in.Policy, in.Phase, name, err)
	}
	return nil
}

// ReadIntent returns the open intent of policy, or nil when there is none.
func ReadIntent(ctx context.Context, store ParameterStore, policy string) (*Intent, error) {
	name := IntentName(policy)
	out, err := store.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the send intent %s with ssm:GetParameter: %w", name, err)
	}
	var in Intent
	if out.Parameter == nil || json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &in) != nil || in.RunID == "" || in.Chunks < 1 {
		// Not an intent patchgate wrote: nothing can be reconciled from it,
		// and overwriting it would hide that someone else uses the name.
		return nil, fmt.Errorf("send intent %s holds a value patchgate did not write; delete it by hand if it is not needed", name)
	}
	return &in, nil
}

// ClearIntent deletes the intent of policy once its command is known (or
// known not to exist). A missing parameter is not an error.
func ClearIntent(ctx context.Context, store ParameterStore, policy string) error {
	name := IntentName(policy)
	return deleteParamAs(ctx, store, name, "clearing the send intent")
}

func deleteParamAs(ctx context.Context, store ParameterStore, name, what string) error {
	_, err := store.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("%s %s with ssm:DeleteParameter: %w", what, name, err)
	}
	return nil
}
