package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/occopus-go/occopus/internal/cloudapi"
)

// Error is a failed call: the one error type of the cloud backends.
type Error = cloudapi.Error

// Provider error codes that mean "slow down" or "try again": the EC2
// throttling codes and the server-side transient ones.
var retryableCodes = map[string]bool{
	"RequestLimitExceeded":      true,
	"Throttling":                true,
	"ThrottlingException":       true,
	"RequestThrottled":          true,
	"RequestThrottledException": true,
	"TooManyRequestsException":  true,
	"SlowDown":                  true,
	"ServiceUnavailable":        true,
	"Unavailable":               true,
	"InternalError":             true,
	"InternalFailure":           true,
	"RequestTimeout":            true,
	"RequestTimeoutException":   true,
	"PriorRequestNotComplete":   true,
	"EC2ThrottledException":     true,
	"BandwidthLimitExceeded":    true,
}

// classify reads one failed SDK call for the Caller: EC2's code and
// message, the HTTP status, whether to try again.
func classify(err error) cloudapi.Class {
	c := cloudapi.Class{Code: httpStatus(err), Retryable: retryable(err), NotFound: isNotFound(err)}
	var send *smithyhttp.RequestSendError
	code, msg, ok := apiError(err)
	switch {
	case ok && code != "UnknownError":
		c.ProviderCode, c.Message = code, msg
	case c.Code != 0:
		// An answer that is no EC2 error document (a proxy's page).
		c.Message = fmt.Sprintf("HTTP %d %s without an EC2 error in the answer", c.Code, http.StatusText(c.Code))
	case errors.As(err, &send) && send.Err != nil:
		c.Message = "no answer: " + send.Err.Error()
	default:
		c.Message = err.Error()
	}
	return c
}

// retryable classifies one failed SDK call. Permanent provider errors
// (InvalidAMIID.NotFound, UnauthorizedOperation, InvalidParameterValue,
// AuthFailure, ...) are 4xx answers with a code and are never retried.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if code, _, ok := apiError(err); ok {
		if retryableCodes[code] {
			return true
		}
		// A coded answer with a 4xx status (other than 429) is the
		// provider's final word.
		return cloudapi.RetryableStatus(httpStatus(err))
	}
	if cloudapi.RetryableStatus(httpStatus(err)) {
		return true
	}
	// No usable answer: the request may or may not have arrived. Every
	// call here is safe to repeat (RunInstances carries a ClientToken).
	var send *smithyhttp.RequestSendError
	if errors.As(err, &send) {
		return true
	}
	// A refused connection is worth another try here too (an attempt cut
	// by its timeout is retried by the Caller).
	return cloudapi.Transient(err) || errors.Is(err, syscall.ECONNREFUSED)
}

// apiError extracts the provider's code and message.
func apiError(err error) (code, msg string, ok bool) {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		return ae.ErrorCode(), ae.ErrorMessage(), true
	}
	return "", "", false
}

// isNotFound reports EC2's "no such instance" answers.
func isNotFound(err error) bool {
	code, _, ok := apiError(err)
	return ok && (code == "InvalidInstanceID.NotFound" || code == "InvalidInstanceID.Malformed")
}

// httpStatus of a response error, 0 when there was no response.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
