package wasmer

import (
	"errors"
	"fmt"
)

// capMemory returns module with the maximum of every memory it defines
// lowered to limit pages (set where the module left it open). wasmer-go
// 1.0.4 cannot cap a memory the module defines itself (its limits come from
// the module), so the cap is written into the binary: a guest's
// memory.grow past it then fails with -1, as on wazero. It refuses a
// module whose initial memory exceeds limit, and shared or 64-bit memories
// (features ABI v1 does not use). Sections other than the memory section
// are copied unchanged; a module that does not decode as far as this needs
// is refused, and the engine's own decoder checks the rest.
func capMemory(module []byte, limit uint32) ([]byte, error) {
	if len(module) < 8 || string(module[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly binary")
	}
	out := make([]byte, 0, len(module)+16)
	out = append(out, module[:8]...)
	rest := module[8:]
	for len(rest) > 0 {
		id := rest[0]
		size, n, err := uleb(rest[1:])
		if err != nil {
			return nil, fmt.Errorf("section header: %w", err)
		}
		start := 1 + n
		if uint64(size) > uint64(len(rest)-start) {
			return nil, errors.New("section runs past the end of the module")
		}
		body := rest[start : start+int(size)]
		if id == 5 { // memory section
			capped, err := capMemorySection(body, limit)
			if err != nil {
				return nil, err
			}
			out = append(out, id)
			out = appendULEB(out, uint32(len(capped)))
			out = append(out, capped...)
		} else {
			out = append(out, rest[:start+int(size)]...)
		}
		rest = rest[start+int(size):]
	}
	return out, nil
}

func capMemorySection(body []byte, limit uint32) ([]byte, error) {
	count, n, err := uleb(body)
	if err != nil {
		return nil, fmt.Errorf("memory section: %w", err)
	}
	body = body[n:]
	out := appendULEB(nil, count)
	for range count {
		if len(body) == 0 {
			return nil, errors.New("memory section is truncated")
		}
		flags := body[0]
		if flags > 1 {
			return nil, fmt.Errorf("memory with flags %#x (shared or 64-bit) is not supported", flags)
		}
		minPages, n, err := uleb(body[1:])
		if err != nil {
			return nil, fmt.Errorf("memory limits: %w", err)
		}
		body = body[1+n:]
		maxPages := limit
		if flags == 1 {
			m, n, err := uleb(body)
			if err != nil {
				return nil, fmt.Errorf("memory limits: %w", err)
			}
			body = body[n:]
			maxPages = min(m, limit)
		}
		if minPages > limit {
			return nil, fmt.Errorf("initial memory of %d pages over limit of %d pages", minPages, limit)
		}
		if minPages > maxPages {
			return nil, errors.New("memory minimum exceeds its maximum")
		}
		out = append(out, 1)
		out = appendULEB(out, minPages)
		out = appendULEB(out, maxPages)
	}
	if len(body) != 0 {
		return nil, errors.New("memory section has trailing bytes")
	}
	return out, nil
}

// uleb decodes an unsigned LEB128 u32 and returns it with its length.
func uleb(b []byte) (uint32, int, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("truncated integer")
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, 0, errors.New("integer overflows 32 bits")
			}
			return uint32(v), i + 1, nil
		}
	}
	return 0, 0, errors.New("integer longer than 5 bytes")
}

func appendULEB(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}
