package ember

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// ChatStrategy is how a chat keeps a long conversation within its context (EMBER_CHAT_*).
type ChatStrategy int32

// The chat strategies.
const (
	ChatWindow  ChatStrategy = C.EMBER_CHAT_WINDOW  // leave out the oldest turns down to half the room
	ChatBudget  ChatStrategy = C.EMBER_CHAT_BUDGET  // keep as many recent turns as fit
	ChatSummary ChatStrategy = C.EMBER_CHAT_SUMMARY // as ChatWindow, summarising the turns left out
)

// ChatParams configure a chat; the zero value keeps history, reserves 256 positions for the reply and uses
// ChatWindow.
type ChatParams struct {
	System    string // system message ("" : none)
	NoHistory bool   // answer each turn alone
	Reserve   int    // context positions kept for the reply; 0: 256
	Strategy  ChatStrategy
}

// Chat is a conversation over a session of its own, with the model's chat template. One goroutine at a time.
type Chat struct{ h handle }

// NewChat creates a chat over the model. A number outside int32 is StatusInvalidArgument.
func (m *Model) NewChat(sp SessionParams, p ChatParams) (*Chat, error) {
	mp, err := m.acquire()
	if err != nil {
		return nil, err
	}
	defer m.h.release()
	nCtx, nBatch, nThreads, err := sp.c()
	if err != nil {
		return nil, err
	}
	reserve, err := cInt32(p.Reserve, "Reserve")
	if err != nil {
		return nil, err
	}
	var system *C.char
	if p.System != "" {
		if system, err = cString(p.System, "the system message"); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(system))
	}
	history := C.int32_t(1)
	if p.NoHistory {
		history = 0
	}
	var out *C.ember_chat
	var msg *C.char
	st := C.ember_go_chat_create(mp, nCtx, nBatch, nThreads, system, history, reserve, C.int32_t(p.Strategy), &out, &msg)
	if err := newError(st, msg); err != nil {
		return nil, err
	}
	c := &Chat{}
	c.h.init(unsafe.Pointer(out), "chat", func(p unsafe.Pointer) { C.ember_chat_free((*C.ember_chat)(p)) }, nil)
	runtime.SetFinalizer(c, (*Chat).Close)
	return c, nil
}

// Close frees the chat (deferred while a turn runs). Idempotent.
func (c *Chat) Close() error {
	c.h.close()
	return nil
}

func (c *Chat) acquire() (*C.ember_chat, error) {
	p, err := c.h.acquire()
	return (*C.ember_chat)(p), err
}

// Say adds the user's message, streams the reply through fn (may be nil) and adds it to the conversation.
// On failure the conversation is as it was.
func (c *Chat) Say(sampler *Sampler, user string, p GenerateParams, fn StreamFunc) (GenerateResult, error) {
	cp, err := c.acquire()
	if err != nil {
		return GenerateResult{StopIndex: -1}, err
	}
	defer c.h.release()
	cuser, err := cString(user, "the message")
	if err != nil {
		return GenerateResult{StopIndex: -1}, err
	}
	defer C.free(unsafe.Pointer(cuser))
	return generate(nil, cp, cuser, sampler, p, fn)
}

// Reset forgets the conversation.
func (c *Chat) Reset() error {
	cp, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.h.release()
	var msg *C.char
	return newError(C.ember_go_chat_reset(cp, &msg), msg)
}

// NMessages is the number of messages (user and assistant turns) in the conversation (-1 once closed).
func (c *Chat) NMessages() int {
	cp, err := c.acquire()
	if err != nil {
		return -1
	}
	defer c.h.release()
	return int(C.ember_chat_n_messages(cp))
}

func (c *Chat) saveLoad(path string, load C.int32_t) error {
	cp, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.h.release()
	cpath, err := cString(path, "the path")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cpath))
	var msg *C.char
	return newError(C.ember_go_chat_save(cp, cpath, load, &msg), msg)
}

// Save writes the conversation and its KV cache to path atomically.
func (c *Chat) Save(path string) error { return c.saveLoad(path, 0) }

// LoadState restores a conversation written by Save.
func (c *Chat) LoadState(path string) error { return c.saveLoad(path, 1) }
