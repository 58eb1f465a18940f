package twiliostub

import (
	"fmt"
	"net/http"
)

// twilioError is the body Twilio's REST API answers errors with; twilio-go
// decodes it into *client.TwilioRestError.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// errorReply is a Twilio-style error with the code Twilio uses for the
// status: 20001 invalid parameter, 20003 authenticate, 20004 method not
// allowed, and 20000+status otherwise (20404, 20429, 20500, 20503 are
// Twilio's own; the rest only need to be recognisable).
func errorReply(status int, format string, args ...any) reply {
	code := 20000 + status
	switch status {
	case http.StatusBadRequest:
		code = 20001
	case http.StatusUnauthorized:
		code = 20003
	case http.StatusMethodNotAllowed:
		code = 20004
	}
	return reply{status: status, body: twilioError{
		Code:     code,
		Message:  fmt.Sprintf(format, args...),
		MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		Status:   status,
	}}
}

func notFound(what, sid string) reply {
	return errorReply(http.StatusNotFound, "The requested resource %s %s was not found", what, sid)
}

// invalid rejects a request for a reason the spec gives only in prose: a
// 400 like Twilio's, recorded as a violation.
func invalid(format string, args ...any) reply {
	rep := errorReply(http.StatusBadRequest, format, args...)
	rep.violation = rep.body.(twilioError).Message
	return rep
}
