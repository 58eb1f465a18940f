package esserver

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flexstream/flexstream/internal/esstore"
)

// KurrentDB reports most failures as a status plus an "exception" trailer;
// the client decides on the trailer (and panics on stream-deleted without
// stream-name), so each error carries both.
type trailerSetter interface{ SetTrailer(metadata.MD) }

type unaryTrailer struct{ ctx context.Context }

func (u unaryTrailer) SetTrailer(md metadata.MD) { _ = grpc.SetTrailer(u.ctx, md) }

func streamDeleted(ts trailerSetter, stream string) error {
	ts.SetTrailer(metadata.Pairs("exception", "stream-deleted", "stream-name", stream))
	return status.Errorf(codes.FailedPrecondition, "Event stream '%s' is deleted.", stream)
}

// wrongExpectedVersionStatus is how Delete and Tombstone (never Append,
// which answers with a message) report a wrong expected version.
func wrongExpectedVersionStatus(ts trailerSetter, e *esstore.WrongExpectedVersionError) error {
	actual := "-1"
	if e.Current.Exists {
		actual = fmt.Sprint(e.Current.Revision)
	}
	expected := map[esstore.ExpectedKind]string{esstore.ExpectAny: "-2", esstore.ExpectNoStream: "-1", esstore.ExpectStreamExists: "-4"}[e.Expected.Kind]
	if e.Expected.Kind == esstore.ExpectRevision {
		expected = fmt.Sprint(e.Expected.Revision)
	}
	ts.SetTrailer(metadata.Pairs("exception", "wrong-expected-version", "stream-name", e.Stream,
		"expected-version", expected, "actual-version", actual))
	return status.Errorf(codes.FailedPrecondition, "Delete failed due to WrongExpectedVersion. Stream: %s, Expected version: %s, Actual version: %s", e.Stream, expected, actual)
}

func invalidArgument(ts trailerSetter, exception, format string, args ...any) error {
	if exception != "" {
		ts.SetTrailer(metadata.Pairs("exception", exception))
	}
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// storeError maps the errors every handler may meet.
func storeError(ts trailerSetter, stream string, err error) error {
	var wev *esstore.WrongExpectedVersionError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, esstore.ErrStreamDeleted):
		return streamDeleted(ts, stream)
	case errors.As(err, &wev):
		return wrongExpectedVersionStatus(ts, wev)
	case errors.Is(err, esstore.ErrInvalid):
		return invalidArgument(ts, "", "%v", err)
	case errors.Is(err, esstore.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Errorf(codes.Internal, "%v", err)
}
