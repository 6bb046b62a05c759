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
// as Parameter Store is). A target sends one command at a time, so one
// parameter holds its only open intent.
func IntentName(policy string) string { return IntentPrefix + policy }

// Intent is the write-ahead record of a SendCommand: written before the
// call and deleted once the command id is known. An intent still there
// when a run starts means a run stopped between sending and recording
// (crash, cancelled job, lost response it could not reconcile): the
// command may exist, and must be looked for before anything is sent.
type Intent struct {
	RunID   string `json:"runId"`
	Policy  string `json:"policy"`
	Phase   string `json:"phase"`
	Wave    int    `json:"wave"`
	Chunk   int    `json:"chunk"`
	Comment string `json:"comment"` // the command's deterministic Comment
	// Digest is a SHA-256 over the sorted instance ids, so a reader can
	// tell the chunk apart from another with the same Comment.
	Digest      string    `json:"digest"`
	InstanceIDs []string  `json:"instanceIds"`
	At          time.Time `json:"at"` // just before the first SendCommand
}

// Digest returns the digest of a set of instance ids.
func Digest(ids []string) string {
	s := append([]string(nil), ids...)
	sort.Strings(s)
	sum := sha256.Sum256([]byte(strings.Join(s, ",")))
	return hex.EncodeToString(sum[:16])
}

// PutIntent records in before its SendCommand. It overwrites: a target has
// one send in flight, and an older intent it replaces was already settled.
func PutIntent(ctx context.Context, store ParameterStore, in Intent, optFns ...func(*ssm.Options)) error {
	if in.Digest == "" {
		in.Digest = Digest(in.InstanceIDs)
	}
	value, err := json.Marshal(in)
	if err != nil {
		return err
	}
	name := IntentName(in.Policy)
	_, err = store.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(string(value)), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
		Description: aws.String("patchgate send intent: a SendCommand that may have run; a later run reconciles it"),
	}, optFns...)
	if err != nil {
		return fmt.Errorf("recording the intent to send %q in %s with ssm:PutParameter: %w", in.Comment, name, err)
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
	if out.Parameter == nil || json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &in) != nil || in.Comment == "" {
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
