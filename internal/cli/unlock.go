package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awsapi"
	"github.com/patchgate/patchgate/internal/lock"
)

type unlockOpts struct {
	aws     awsFlags
	policy  string
	account string
	roleARN string
	lockID  string
}

// unlockCommand is `patchgate unlock`.
func unlockCommand() *Command {
	return &Command{
		Name:    "unlock",
		Summary: "Release a run lock left behind by a run that died",
		Usage: "patchgate unlock --policy NAME --region REGION --lock-id ID [--account ID [--role-arn ARN]]\n\n" +
			"A run holds one lock per policy x account x region (SSM parameter /patchgate/locks/<policy>).\n" +
			"The lock id is printed by the run that was refused and recorded in its report; it must match,\n" +
			"so a live run's lock cannot be released by mistake.",
		Flags: func(fs *flag.FlagSet) any {
			o := &unlockOpts{}
			o.aws.register(fs)
			fs.StringVar(&o.policy, "policy", "", "policy name (required)")
			fs.StringVar(&o.account, "account", "", "account id of the lock; default the credentials' account")
			fs.StringVar(&o.roleARN, "role-arn", "", "role to assume in that account (the policy's roleArn)")
			fs.StringVar(&o.lockID, "lock-id", "", "the lock's id (required)")
			return o
		},
		Run: runUnlock,
	}
}

func runUnlock(ctx context.Context, env Env, opts any, args []string) int {
	o := opts.(*unlockOpts)
	region := o.aws.region // the lock's region
	if o.policy == "" || o.lockID == "" || region == "" || len(args) > 0 {
		fmt.Fprintln(env.Stderr, "patchgate unlock: --policy, --region and --lock-id are required (and no positional arguments)")
		return ExitUsage
	}
	session := o.aws.session("patchgate-unlock")
	base, _, err := o.aws.connect(ctx, env, session, nil)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate unlock: %v\n", err)
		return ExitUsage
	}
	f := &awsapi.Factory{Base: base, SessionName: session}
	cfg, account, err := f.Config(ctx, o.account, o.roleARN, region)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate unlock: %v\n", err)
		return ExitUsage
	}
	holder, err := lock.Unlock(ctx, ssm.NewFromConfig(cfg), o.policy, o.lockID)
	if err != nil {
		fmt.Fprintf(env.Stderr, "patchgate unlock: %v\n", err)
		return ExitFailed
	}
	fmt.Fprintf(env.Stdout, "released lock %s in %s/%s (held by run %s since %s)\n", lock.Name(o.policy), account, region, holder.RunID, holder.Started.Format("2006-01-02T15:04:05Z07:00"))
	return ExitOK
}
