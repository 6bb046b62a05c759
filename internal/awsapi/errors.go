package awsapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Unreachable reports whether err says the endpoint could not be reached at
// all: the connection was refused, the host name does not resolve, the dial
// timed out, or the TLS handshake failed. The request never reached AWS, so
// nothing it asked for can have happened.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var (
		rec     tls.RecordHeaderError
		recP    *tls.RecordHeaderError
		verify  *tls.CertificateVerificationError
		alert   tls.AlertError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	return errors.As(err, &rec) || errors.As(err, &recP) || errors.As(err, &verify) || errors.As(err, &alert) ||
		errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}

// Throttled reports whether AWS refused the call for its rate: the request
// was rejected before it did anything.
func Throttled(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ThrottlingException", "Throttling", "TooManyUpdates", "RequestLimitExceeded", "TooManyRequestsException":
			return true
		}
	}
	return false
}

// Rejected reports whether AWS answered with a client error (HTTP 4xx with
// an error code): it refused the request, so it did not take effect.
func Rejected(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if ae.ErrorFault() == smithy.FaultClient {
			return true
		}
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500 {
			return true
		}
	}
	return false
}

// CutShort reports whether a response arrived but could not be read whole:
// the body ended early or did not parse. The call reached AWS and may well
// have taken effect.
func CutShort(err error) bool {
	var de *smithy.DeserializationError
	return errors.As(err, &de) || errors.Is(err, io.ErrUnexpectedEOF)
}

// DescribeUnreachable turns an Unreachable error from op into a message
// that names the endpoint and says what to check; other errors are returned
// as they are.
func DescribeUnreachable(op string, err error) error {
	if !Unreachable(err) {
		return err
	}
	where := "the AWS endpoint"
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			where = u.Scheme + "://" + u.Host
		}
	}
	return fmt.Errorf("%s: cannot reach %s (gave up after at most %d quick attempts; connection refused, DNS and TLS "+
		"failures are not retried longer): check --endpoint-url / AWS_ENDPOINT_URL, the region and the network: %w",
		op, where, unreachableAttempts, err)
}

// unreachableAttempts bounds the attempts at an endpoint that cannot be
// reached, and unreachableDelay the wait between them: an endpoint that
// refuses connections or does not resolve will not start answering within
// a standard retry's minutes, and a wrong --endpoint-url must fail in
// seconds. With dialTimeout a black-holed address costs at most
// 3 x 4 s + 2 x 1 s = 14 s.
const (
	unreachableAttempts = 3
	unreachableDelay    = time.Second
	dialTimeout         = 4 * time.Second
)

// failFast is the standard retryer except for unreachable endpoints.
type failFast struct{ aws.RetryerV2 }

// RetryDelay stops after unreachableAttempts for an unreachable endpoint
// (the SDK counts attempt from 1 after the first failure) and waits at most
// unreachableDelay between them.
func (r failFast) RetryDelay(attempt int, err error) (time.Duration, error) {
	if Unreachable(err) {
		// An operation error inside the attempt's error is a nested call
		// (the credentials' AssumeRole) that already made its own quick
		// attempts: trying again would multiply them.
		var nested *smithy.OperationError
		if attempt >= unreachableAttempts || errors.As(err, &nested) {
			return 0, err
		}
		d, derr := r.RetryerV2.RetryDelay(attempt, err)
		return min(d, unreachableDelay), derr
	}
	return r.RetryerV2.RetryDelay(attempt, err)
}
