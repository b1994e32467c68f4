// ember — the whole public C++ API.
#pragma once

#include "ember/adapter.hpp"
#include "ember/chat.hpp"
#include "ember/chat_template.hpp"
#include "ember/error.hpp"
#include "ember/gguf_writer.hpp"
#include "ember/grammar.hpp"
#include "ember/library.hpp"
#include "ember/model.hpp"
#include "ember/model_info.hpp"
#include "ember/quantize.hpp"
#include "ember/sampler.hpp"
#include "ember/session.hpp"
#include "ember/tokenizer.hpp"
#include "ember/version.hpp"
