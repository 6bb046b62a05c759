package awsapi

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Factory hands out configurations per account and region from one base
// configuration. Assumed roles and caller identities are cached, so a run
// over many regions assumes each account's role once and refreshes it in
// one place.
type Factory struct {
	Base        aws.Config
	SessionName string
	Masker      Masker

	mu       sync.Mutex
	chained  map[string]aws.Config // by role ARN
	accounts map[string]*identity  // role ARN ("" for base) -> account id
}

// identity is one sts:GetCallerIdentity answer, shared by every target of
// the credentials: the targets of a run start at once, and each asking
// STS for itself cost a call per account-region instead of one per
// account. done closes when account and err are set.
type identity struct {
	done    chan struct{}
	account string
	err     error
}

// Config returns the configuration for accountID in region, and the account
// id it resolves to. With roleARN the role is assumed from the base
// credentials (role chaining); without it the base credentials must belong
// to accountID (or accountID is empty: "the credentials' own account").
func (f *Factory) Config(ctx context.Context, accountID, roleARN, region string) (aws.Config, string, error) {
	f.mu.Lock()
	if f.chained == nil {
		f.chained, f.accounts = map[string]aws.Config{}, map[string]*identity{}
	}
	cfg := f.Base
	if roleARN != "" {
		c, ok := f.chained[roleARN]
		if !ok {
			c = AssumeRole(f.Base, roleARN, f.SessionName, f.Masker)
			f.chained[roleARN] = c
		}
		cfg = c
	}
	id, known := f.accounts[roleARN]
	if !known {
		id = &identity{done: make(chan struct{})}
		f.accounts[roleARN] = id
	}
	f.mu.Unlock()

	if !known {
		got, err := CallerIdentity(ctx, cfg, f.Masker)
		id.account, id.err = got.Account, err
		if err != nil {
			// Not kept: a later target asks again (the error may have
			// been this context's), those waiting now share it.
			f.mu.Lock()
			delete(f.accounts, roleARN)
			f.mu.Unlock()
		}
		close(id.done)
	}
	select {
	case <-id.done:
	case <-ctx.Done():
		return aws.Config{}, "", ctx.Err()
	}
	if err := id.err; err != nil {
		if roleARN != "" {
			return aws.Config{}, "", fmt.Errorf("assuming %s: %w", roleARN, err)
		}
		return aws.Config{}, "", err
	}
	account := id.account
	if accountID != "" && account != accountID {
		if roleARN == "" {
			return aws.Config{}, "", fmt.Errorf("account %s has no roleArn, and the credentials in use belong to account %s: add roleArn for it in the policy", accountID, account)
		}
		return aws.Config{}, "", fmt.Errorf("role %s belongs to account %s, not %s: fix the policy's accounts entry", roleARN, account, accountID)
	}
	cfg = cfg.Copy()
	cfg.Region = region
	return cfg, account, nil
}
