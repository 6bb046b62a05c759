//go:build integration

package rollout

// Wire compatibility of the rollout's SSM Run Command calls with moto.
//
// moto (see docs/simulator.md, "Wire compatibility (moto)") implements
// SendCommand (InstanceIds and tag: Targets, resolved against its EC2),
// ListCommands (by CommandId; it ignores Filters and MaxResults) and
// GetCommandInvocation, with every command finished as Success at once.
// A command sent by InstanceIds alone also gets every other instance of the
// account (moto resolves the empty Targets list as "all instances"), so
// the instances patchgate asked for are checked on the wire, through a
// motoenv.Recorder, and patchgate's own bookkeeping must ignore the rest. It
// does not implement DescribeInstanceInformation, ListCommandInvocations or
// CancelCommand: it answers HTTP 500 with an HTML page. These tests assert
// that patchgate's real request shapes are accepted where moto has the
// operation, and that where it has not, patchgate fails with an error naming
// the operation and never reports a success it did not see.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/discover"
	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/motoenv"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
)

// motoLaunch starts n EC2 instances in moto with tags and returns their ids, sorted.
func motoLaunch(t *testing.T, cfg aws.Config, n int, tags map[string]string) []string {
	t.Helper()
	var ts []ec2types.Tag
	for k, v := range tags {
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := ec2.NewFromConfig(cfg).RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: ts}},
	})
	if err != nil {
		t.Fatalf("ec2:RunInstances in moto: %v", err)
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	sort.Strings(ids)
	return ids
}

// motoInventory answers DescribeInstanceInformation from moto's EC2, which
// moto's SSM lacks: running instances matching the tag: / InstanceIds
// filters are Online. It stands in for the SSM agent's registration only;
// everything else the engine does goes to moto.
type motoInventory struct{ ec2 *ec2.Client }

func (m motoInventory) DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	q := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}}
	for _, f := range in.Filters {
		switch k := aws.ToString(f.Key); {
		case strings.HasPrefix(k, "tag:"):
			q.Filters = append(q.Filters, ec2types.Filter{Name: aws.String(k), Values: f.Values})
		case k == "InstanceIds":
			q.InstanceIds = f.Values
		default:
			return nil, fmt.Errorf("motoInventory: filter %s not supported", k)
		}
	}
	out, err := m.ec2.DescribeInstances(ctx, q)
	if err != nil {
		return nil, err
	}
	res := &ssm.DescribeInstanceInformationOutput{}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			res.InstanceInformationList = append(res.InstanceInformationList, ssmtypes.InstanceInformation{
				InstanceId: i.InstanceId, PingStatus: ssmtypes.PingStatusOnline, PlatformName: aws.String("Amazon Linux"),
				ComputerName: aws.String(aws.ToString(i.PrivateDnsName)),
			})
		}
	}
	return res, nil
}

func TestMotoSendCommandListAndOutcomes(t *testing.T) {
	cfg, _ := motoenv.FreshAccount(t)
	ctx := context.Background()
	group := motoenv.Unique("web-")
	staging := motoLaunch(t, cfg, 3, map[string]string{"PatchGroup": group, "Environment": "staging"})
	production := motoLaunch(t, cfg, 2, map[string]string{"PatchGroup": group, "Environment": "production"})
	rec := motoenv.Record(t)
	c := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = aws.String(rec.URL) })
	runID := motoenv.Unique("it")
	started := time.Now()

	snd := &sender{ssm: c, clock: clock.Real{}, log: slog.New(slog.DiscardHandler)}
	params := map[string][]string{"Operation": {"Install"}, "SnapshotId": {"11111111-2222-3333-4444-555555555555"}, "RebootOption": {"RebootIfNeeded"}}
	input := func(comment string) *ssm.SendCommandInput {
		return &ssm.SendCommandInput{DocumentName: aws.String(DocumentName), Parameters: params, Comment: aws.String(comment),
			MaxConcurrency: aws.String("50%"), MaxErrors: aws.String("0"), TimeoutSeconds: aws.Int32(600)}
	}

	// By tag: Targets, ANDed as SSM does.
	byTag := input(Comment(runID, "web", "staging", 1, 1))
	byTag.Targets = []ssmtypes.Target{{Key: aws.String("tag:PatchGroup"), Values: []string{group}}, {Key: aws.String("tag:Environment"), Values: []string{"staging"}}}
	tagSent, err := snd.send(ctx, byTag)
	tagCmd := tagSent.id
	if err != nil {
		t.Fatal(err)
	}
	// By InstanceIds, as runWave sends each chunk.
	byID := input(Comment(runID, "web", "production", 1, 1))
	byID.InstanceIds = production
	idSent, err := snd.send(ctx, byID)
	idCmd := idSent.id
	if err != nil {
		t.Fatal(err)
	}
	// Someone else's command in the same account: not ours to find.
	other := input("patchgate run=" + runID + "x web/staging/w1/c1")
	other.InstanceIds = production[:1]
	if _, err := c.SendCommand(ctx, other); err != nil {
		t.Fatal(err)
	}

	// commandStates by id (two commands or fewer): moto finished them at once.
	states, err := commandStates(ctx, c, DocumentName, []string{tagCmd, idCmd}, started, 2)
	if err != nil {
		t.Fatal(err)
	}
	tagState := states[tagCmd]
	if got := slices.Sorted(slices.Values(tagState.InstanceIds)); !slices.Equal(got, staging) {
		t.Fatalf("moto resolved the tag: targets to %v, want the staging instances %v", got, staging)
	}
	if !CommandTerminal(string(tagState.Status)) || tagState.Status != ssmtypes.CommandStatusSuccess {
		t.Fatalf("tag command status %q", tagState.Status)
	}
	if aws.ToString(tagState.DocumentName) != DocumentName || tagState.Parameters["Operation"][0] != "Install" ||
		tagState.Parameters["SnapshotId"][0] != params["SnapshotId"][0] || aws.ToString(tagState.MaxConcurrency) != "50%" ||
		aws.ToString(tagState.MaxErrors) != "0" || aws.ToInt32(tagState.TimeoutSeconds) != 600 || len(tagState.Targets) != 2 {
		t.Fatalf("moto parsed the SendCommand as %+v", tagState)
	}
	// On the wire: exactly the production instances, no Targets.
	var wire struct {
		InstanceIds []string
		Targets     []any
		Comment     string
	}
	sends := rec.Requests("SendCommand")
	if err := json.Unmarshal(sends[1].Body, &wire); err != nil || !slices.Equal(wire.InstanceIds, production) || wire.Targets != nil || wire.Comment != aws.ToString(byID.Comment) {
		t.Fatalf("SendCommand by InstanceIds sent %s (%v)", sends[1].Body, err)
	}
	// moto's view of it includes them (and, see above, every other instance).
	if got := states[idCmd].InstanceIds; !containsAll(got, production) {
		t.Fatalf("InstanceIds command went to %v in moto, want at least %v", got, production)
	}

	// runWave judges only the instances of its chunk (TestMotoEngineRun
	// counts 3 targeted where moto lists 4), so the extra ones are harmless.
	extra := states[idCmd].InstanceIds
	if len(extra) > len(production) {
		t.Logf("moto gap: a command sent to %d instance ids lists %d instances", len(production), len(extra))
	}

	// listRunCommands: moto ignores ListCommands' InvokedAfter/DocumentName
	// filters and returns every command of the account; patchgate's own
	// Comment prefix check keeps only this run's.
	mine, err := listRunCommands(ctx, c, DocumentName, started.Add(-time.Minute), "patchgate run="+runID+" ")
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 2 || aws.ToString(mine[aws.ToString(byTag.Comment)].CommandId) != tagCmd || aws.ToString(mine[aws.ToString(byID.Comment)].CommandId) != idCmd {
		t.Fatalf("listRunCommands found %d commands: %v", len(mine), mine)
	}
	var listed struct {
		Filters    []struct{ Key, Value string }
		MaxResults int
	}
	lists := rec.Requests("ListCommands")
	if err := json.Unmarshal(lists[len(lists)-1].Body, &listed); err != nil || len(listed.Filters) != 2 || listed.MaxResults != 50 ||
		listed.Filters[0].Key != "InvokedAfter" || listed.Filters[1].Key != "DocumentName" || listed.Filters[1].Value != DocumentName {
		t.Fatalf("ListCommands sent %s (%v)", lists[len(lists)-1].Body, err)
	}
	if _, err := time.Parse(time.RFC3339, listed.Filters[0].Value); err != nil {
		t.Fatalf("InvokedAfter %q is not RFC 3339: %v", listed.Filters[0].Value, err)
	}
	// commandStates over three or more commands uses the filtered listing.
	thirdSent, err := snd.send(ctx, func() *ssm.SendCommandInput {
		in := input(Comment(runID, "web", "production", 2, 1))
		in.InstanceIds = production
		return in
	}())
	if err != nil {
		t.Fatal(err)
	}
	states, err = commandStates(ctx, c, DocumentName, []string{tagCmd, idCmd, thirdSent.id}, started.Add(-time.Minute), 3)
	if err != nil || len(states) != 3 {
		t.Fatalf("commandStates by listing: %d states, %v", len(states), err)
	}

	// GetCommandInvocation, per instance, into patchgate's outcome model.
	for _, id := range staging {
		inv, err := c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(tagCmd), InstanceId: aws.String(id)})
		if err != nil {
			t.Fatalf("ssm:GetCommandInvocation %s: %v", id, err)
		}
		ended, err := time.Parse("2006-01-02T15:04:05.999999", aws.ToString(inv.ExecutionEndDateTime))
		if err != nil {
			t.Fatalf("ExecutionEndDateTime %q: %v", aws.ToString(inv.ExecutionEndDateTime), err)
		}
		r := invocationResult(ssmtypes.CommandInvocation{InstanceId: inv.InstanceId, Status: ssmtypes.CommandInvocationStatus(inv.Status), StatusDetails: inv.StatusDetails,
			CommandPlugins: []ssmtypes.CommandPlugin{{Name: inv.PluginName, Status: ssmtypes.CommandPluginStatus(inv.Status), ResponseFinishDateTime: aws.Time(ended), Output: inv.StandardOutputContent}}})
		if r.ID != id || r.Outcome != result.OutcomeSucceeded || r.SSMStatus != "Success" || r.Error != "" || r.PatchEndedAt.IsZero() {
			t.Fatalf("invocation of %s became %+v", id, r)
		}
	}
	if _, err := c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(tagCmd), InstanceId: aws.String(production[0])}); err == nil ||
		!strings.Contains(err.Error(), "InvocationDoesNotExist") {
		t.Fatalf("an instance the command did not target: want InvocationDoesNotExist, got %v", err)
	}

	// moto gaps: each fails loudly, naming the operation.
	if _, err := invocations(ctx, c, tagCmd); err == nil || !strings.Contains(err.Error(), "ssm:ListCommandInvocations") || !strings.Contains(err.Error(), tagCmd) {
		t.Fatalf("ListCommandInvocations is not in moto: want a clear error, got %v", err)
	}
	if errs := cancel(c, []string{tagCmd}, 5*time.Second); len(errs) != 1 || !strings.Contains(errs[0].Error(), "cancelling command "+tagCmd) {
		t.Fatalf("CancelCommand is not in moto: want a clear error, got %v", errs)
	}
	if _, err := discover.Instances(ctx, c, map[string]string{"PatchGroup": group}, nil); err == nil || !strings.Contains(err.Error(), "ssm:DescribeInstanceInformation") {
		t.Fatalf("DescribeInstanceInformation is not in moto: want a clear error, got %v", err)
	}
}

// TestMotoEngineRun runs a whole policy through the engine against moto: the
// factory chains into a fresh account, the lock is taken and released in
// Parameter Store, the wave is sent and polled. Only the inventory comes
// from moto's EC2 (motoInventory). Because moto cannot list invocations,
// every instance must end inconclusive, and so the run, never passed.
func TestMotoEngineRun(t *testing.T) {
	acctCfg, account := motoenv.FreshAccount(t)
	ctx := context.Background()
	group := motoenv.Unique("api-")
	ids := motoLaunch(t, acctCfg, 3, map[string]string{"PatchGroup": group, "Environment": "staging"})
	motoLaunch(t, acctCfg, 1, map[string]string{"PatchGroup": group, "Environment": "production"}) // not targeted

	rec := motoenv.Record(t)
	base, err := awsapi.LoadConfig(ctx, awsapi.Options{Region: motoenv.Region, Endpoint: rec.URL, RetryMaxBackoff: 20 * time.Millisecond,
		Extra: motoenv.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	pol := motoPolicy(t, fmt.Sprintf(`apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata: {name: %s}
spec:
  operatingSystem: AMAZON_LINUX_2023
  baseline: {approvalRules: [{classifications: [Security], approveAfterDays: 7}]}
  accounts: [{id: "%s", roleArn: "arn:aws:iam::%s:role/patchgate-target"}]
  regions: [us-east-1]
  phases:
    - name: staging
      targets: {tags: {PatchGroup: %s, Environment: staging}}
      maxConcurrency: "2"
      verify: {compliance: false}
`, group, account, account, group))
	runID := motoenv.Unique("run")
	connect := testConnect(&awsapi.Factory{Base: base, SessionName: "patchgate-" + runID}, nil)
	inv := motoInventory{ec2: ec2.NewFromConfig(acctCfg)}
	opt := Options{RunID: runID, Explicit: true, Clock: clock.Real{}, Logger: slog.New(slog.DiscardHandler),
		PollMin: 50 * time.Millisecond, PollMax: 200 * time.Millisecond, CancelTimeout: 2 * time.Second,
		Connect: func(ctx context.Context, accountID, roleARN, region string) (*Clients, error) {
			c, err := connect(ctx, accountID, roleARN, region)
			if err == nil {
				c.Inventory = inv
			}
			return c, err
		}}

	first := New(opt).Run(ctx, []*policy.Policy{pol})
	tg := first.Policies[0].Targets[0]
	if tg.AccountID != account || len(tg.Phases) != 1 {
		t.Fatalf("target %+v", tg)
	}
	ph := tg.Phases[0]
	if first.Status != result.StatusInconclusive || ph.Status != result.StatusInconclusive || len(ph.Reasons) == 0 || ph.Reasons[0].Code != "inconclusive-invocations" {
		t.Fatalf("without invocation results the run must be inconclusive: run %s, phase %s %+v", first.Status, ph.Status, ph.Reasons)
	}
	if ph.Counts.Targeted != 3 || ph.Counts.Inconclusive != 3 || ph.Counts.Succeeded != 0 {
		t.Fatalf("counts %+v", ph.Counts)
	}
	if len(ph.Waves) != 1 || len(ph.Waves[0].Commands) != 1 {
		t.Fatalf("waves %+v", ph.Waves)
	}
	cmd := ph.Waves[0].Commands[0]
	if !cmd.Sent || cmd.CommandID == "" || cmd.Status != "Success" || cmd.Comment != Comment(runID, group, "staging", 1, 1) {
		t.Fatalf("command %+v", cmd)
	}
	for _, in := range ph.Waves[0].Instances {
		if in.Outcome != result.OutcomeInconclusive || !strings.Contains(in.Error, "ssm:ListCommandInvocations") {
			t.Fatalf("instance %+v: want inconclusive, naming ListCommandInvocations", in)
		}
	}
	if tg.Lock == nil || !tg.Lock.Held || tg.Lock.Parameter != lock.Name(group) {
		t.Fatalf("lock %+v", tg.Lock)
	}
	acct := ssm.NewFromConfig(acctCfg)
	var nf *ssmtypes.ParameterNotFound
	if _, err := acct.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(lock.Name(group))}); !errors.As(err, &nf) {
		t.Fatalf("the lock must be released after the run, got %v", err)
	}

	// What moto parsed from the engine's SendCommand.
	lc, err := acct.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(cmd.CommandID)})
	if err != nil || len(lc.Commands) != 1 {
		t.Fatalf("ListCommands %s: %v", cmd.CommandID, err)
	}
	sent := lc.Commands[0]
	if !containsAll(sent.InstanceIds, ids) {
		t.Fatalf("moto lists %v, want at least the staging instances %v", sent.InstanceIds, ids)
	}
	var wire struct{ InstanceIds []string }
	if sends := rec.Requests("SendCommand"); len(sends) != 1 || json.Unmarshal(sends[0].Body, &wire) != nil || !slices.Equal(wire.InstanceIds, ids) {
		t.Fatalf("the engine must send one command to exactly %v; sent %d: %v", ids, len(sends), wire.InstanceIds)
	}
	wantParams := map[string][]string{"Operation": {"Install"}, "SnapshotId": {first.SnapshotID}, "RebootOption": {"RebootIfNeeded"}}
	if aws.ToString(sent.DocumentName) != DocumentName || fmt.Sprint(sent.Parameters) != fmt.Sprint(wantParams) || aws.ToString(sent.MaxConcurrency) != "2" ||
		aws.ToString(sent.MaxErrors) != "0" || aws.ToInt32(sent.TimeoutSeconds) != 600 || aws.ToString(sent.Comment) != cmd.Comment {
		t.Fatalf("moto parsed the engine's SendCommand as %+v", sent)
	}

	// A re-run with the same run id finds the command by its Comment and
	// resumes it: nothing is sent twice, and the same SnapshotId is kept.
	second := New(opt).Run(ctx, []*policy.Policy{pol})
	w2 := second.Policies[0].Targets[0].Phases[0].Waves[0]
	if !w2.Resumed || !w2.Commands[0].Resumed || w2.Commands[0].CommandID != cmd.CommandID || second.SnapshotID != first.SnapshotID {
		t.Fatalf("re-run: resumed %v, command %s (want %s), snapshot %s (want %s)", w2.Resumed, w2.Commands[0].CommandID, cmd.CommandID, second.SnapshotID, first.SnapshotID)
	}
	if n := len(rec.Requests("SendCommand")); n != 1 {
		t.Fatalf("the re-run sent %d more commands", n-1)
	}

	// Without the EC2 stand-in, the engine meets moto's missing
	// DescribeInstanceInformation: an error naming it, nothing sent.
	opt.Connect, opt.RunID = connect, motoenv.Unique("run")
	third := New(opt).Run(ctx, []*policy.Policy{pol})
	ph3 := third.Policies[0].Targets[0].Phases[0]
	if third.Status != result.StatusError || ph3.Status != result.StatusError || !strings.Contains(ph3.Reasons[0].Message, "ssm:DescribeInstanceInformation") {
		t.Fatalf("want an inventory error naming DescribeInstanceInformation: run %s, phase %+v", third.Status, ph3)
	}
	if _, err := acct.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(lock.Name(group))}); !errors.As(err, &nf) {
		t.Fatalf("the lock must be released after a failed run, got %v", err)
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func motoPolicy(t *testing.T, src string) *policy.Policy {
	t.Helper()
	p, probs := policy.Parse("moto.yaml", []byte(src))
	if len(probs) > 0 {
		t.Fatal(probs.Error())
	}
	return p
}
