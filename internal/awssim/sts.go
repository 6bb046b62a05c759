package awssim

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// serveSTS answers STS's awsQuery calls. Credentials it issues carry their
// account in the access key id, so later calls signed with them see that
// account's fleet.
func (s *Sim) serveSTS(w http.ResponseWriter, r *http.Request, body []byte, account string) {
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	err, drop := s.preflight("sts:" + action)
	if drop {
		dropConnection(w)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	if err != nil {
		writeQueryError(w, err.(*apiError))
		return
	}
	now := s.clock.Now()
	// DurationSeconds as STS reads it: 900 s to the role's
	// MaxSessionDuration (the sim's roles allow the most, 12 h), an hour
	// when absent; a role assumed with a role session's credentials (role
	// chaining) for an hour at the most.
	life := time.Hour
	if v := form.Get("DurationSeconds"); v != "" && (action == "AssumeRole" || action == "AssumeRoleWithWebIdentity") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > 43200 {
			writeQueryError(w, &apiError{Code: "ValidationError", Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", v), Status: 400})
			return
		}
		if chained := strings.Contains(r.Header.Get("Authorization"), "Credential=ASIA"); chained && action == "AssumeRole" && n > 3600 {
			writeQueryError(w, &apiError{Code: "ValidationError", Message: "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.", Status: 400})
			return
		}
		life = time.Duration(n) * time.Second
	}
	issue := func(acct string) string {
		s.mu.Lock()
		s.nextKey++
		n := s.nextKey
		s.mu.Unlock()
		return fmt.Sprintf(`<Credentials><AccessKeyId>ASIASIM%s%05d</AccessKeyId><SecretAccessKey>simsecret</SecretAccessKey><SessionToken>simtoken%d</SessionToken><Expiration>%s</Expiration></Credentials>`,
			acct, n, n, now.Add(life).UTC().Format(time.RFC3339))
	}
	roleAccount := func() (string, bool) {
		arn := form.Get("RoleArn")
		parts := strings.Split(arn, ":")
		if len(parts) < 6 || parts[2] != "iam" || len(parts[4]) != 12 {
			writeQueryError(w, &apiError{Code: "ValidationError", Message: "invalid RoleArn " + arn, Status: 400})
			return "", false
		}
		for _, a := range s.sc.Accounts {
			if a == parts[4] {
				return a, true
			}
		}
		writeQueryError(w, &apiError{Code: "AccessDenied", Message: "Not authorized to perform sts:AssumeRole on " + arn, Status: 403})
		return "", false
	}
	switch action {
	case "GetCallerIdentity":
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:sts::%s:assumed-role/patchgate/sim</Arn><UserId>AROASIM:sim</UserId><Account>%s</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>sim</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, account, account)
	case "AssumeRole", "AssumeRoleWithWebIdentity":
		if action == "AssumeRoleWithWebIdentity" && form.Get("WebIdentityToken") == "" {
			writeQueryError(w, &apiError{Code: "InvalidIdentityToken", Message: "missing token", Status: 400})
			return
		}
		acct, ok := roleAccount()
		if !ok {
			return
		}
		fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult>%[2]s<AssumedRoleUser><Arn>%[3]s/%[4]s</Arn><AssumedRoleId>AROASIM:%[4]s</AssumedRoleId></AssumedRoleUser></%[1]sResult><ResponseMetadata><RequestId>sim</RequestId></ResponseMetadata></%[1]sResponse>`,
			action, issue(acct), strings.Replace(form.Get("RoleArn"), ":iam:", ":sts:", 1), form.Get("RoleSessionName"))
	default:
		writeQueryError(w, &apiError{Code: "InvalidAction", Message: "awssim does not implement sts:" + action, Status: 400})
	}
}

func writeQueryError(w http.ResponseWriter, e *apiError) {
	typ := "Sender"
	if e.Status >= 500 {
		typ = "Receiver"
	}
	w.WriteHeader(e.Status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>sim</RequestId></ErrorResponse>`, typ, e.Code, e.Message)
}
