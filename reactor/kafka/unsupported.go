package kafka

// Requests for keys or versions the broker does not serve.
//
// Clients learn the served versions from ApiVersions and send nothing else; some do not ask (a
// client pinned to a Kafka version, a tool sending a request the broker never advertised). Such a
// request is answered, where the protocol lets it be, with the response of its key and version
// carrying UNSUPPORTED_VERSION in the top-level error code and a message naming the versions
// served: the client reports a clear error and the connection stays usable. Where no such
// answer can be framed (a key or version kmsg does not know, or a response version without a
// top-level error code, which would read as success or as an empty answer) the connection is
// closed, as Kafka closes it.

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/reactor/core"
)

// unsupported answers (or, when it cannot, closes the connection after) a request whose key or
// version is not served. It runs on the event loop: building the answer touches no disk.
func (s *Server) unsupported(sess *core.Session, seq uint64, h header, f *core.Frame) {
	resp, flexible, ok := unsupportedResponse(h.key, h.version)
	if !ok {
		s.Logger.Debug("closing connection after an unsupported request that cannot be answered with an error",
			zap.Int16("key", h.key), zap.Int16("version", h.version))
		s.abort(sess, seq, f)
		return
	}
	s.Logger.Debug("answering an unsupported request with UNSUPPORTED_VERSION",
		zap.Int16("key", h.key), zap.Int16("version", h.version))
	f.Release()
	h.flexible = flexible
	sess.Complete(seq, encodeResponse(h, resp))
}

var stringPtrType = reflect.TypeFor[*string]()

// unsupportedResponse is the response of key at version with UNSUPPORTED_VERSION as its
// top-level error, and whether its header is flexible. ok is false when there is none: kmsg does
// not know the key or the version, or the response has no top-level error code at that version
// (checked by encoding it with and without the code: a field absent from the version leaves the
// bytes unchanged).
func unsupportedResponse(key, version int16) (resp kmsg.Response, flexible, ok bool) {
	req := kmsg.RequestForKey(key)
	if req == nil || version < 0 || version > req.MaxVersion() {
		return nil, false, false
	}
	req.SetVersion(version)
	resp = req.ResponseKind()
	v := reflect.ValueOf(resp)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, false, false
	}
	code := v.Elem().FieldByName("ErrorCode")
	if !code.IsValid() || code.Kind() != reflect.Int16 || !code.CanSet() {
		return nil, false, false
	}
	without := resp.AppendTo(nil)
	code.SetInt(int64(errcode.UnsupportedVersion))
	if bytes.Equal(without, resp.AppendTo(nil)) {
		return nil, false, false
	}
	msg := unsupportedMessage(key, version)
	if m := v.Elem().FieldByName("ErrorMessage"); m.IsValid() && m.CanSet() {
		switch {
		case m.Type() == stringPtrType:
			m.Set(reflect.ValueOf(&msg))
		case m.Kind() == reflect.String:
			m.SetString(msg)
		}
	}
	return resp, req.IsFlexible(), true
}

// unsupportedMessage says what the broker serves instead.
func unsupportedMessage(key, version int16) string {
	name := kmsg.NameForKey(key)
	if api, ok := supportedAPI(key); ok {
		return fmt.Sprintf("%s v%d is not supported: this broker serves v%d-v%d (ApiVersions lists every API)", name, version, api.min, api.max)
	}
	return fmt.Sprintf("%s is not supported by this broker (ApiVersions lists the APIs it serves)", name)
}
