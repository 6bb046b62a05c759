package rollout

import (
	"errors"

	"github.com/aws/smithy-go"
)

// denied reports whether AWS refused a call for want of permission or
// valid credentials: retrying cannot help, and the run must say which IAM
// action is missing rather than wait out a deadline.
func denied(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnrecognizedClientException",
		"InvalidClientTokenId", "ExpiredTokenException", "ExpiredToken", "SignatureDoesNotMatch", "AuthFailure":
		return true
	}
	return false
}

// apiErrorCode is the gate's failure code for an error met while doing
// what: "aws-access-denied" when AWS refused the call, else what.
func apiErrorCode(err error, what string) string {
	if denied(err) {
		return "aws-access-denied"
	}
	return what
}
