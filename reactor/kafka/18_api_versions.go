package kafka

// ApiVersions (key 18), versions 0-4.
//
// A request above version 4 is answered in version 0's format with UNSUPPORTED_VERSION and the
// table, so the client can retry with a version both sides speak (franz-go opens with v5, kafkajs
// steps down from v2). The response header never carries a tag byte, even for flexible v3+ bodies.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/reactor/core"
)

func (s *Server) apiVersions(sess *core.Session, seq uint64, h header, body []byte) {
	resp := kmsg.NewPtrApiVersionsResponse()
	for _, a := range advertised {
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: a.key, MinVersion: a.min, MaxVersion: a.max})
	}
	if h.version > 4 || h.version < 0 {
		resp.ErrorCode = int16(errcode.UnsupportedVersion)
		h.version = 0
		sess.Complete(seq, encodeResponse(h, resp))
		return
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		resp.ErrorCode = int16(errcode.InvalidRequest)
	}
	sess.Complete(seq, encodeResponse(h, resp))
}
