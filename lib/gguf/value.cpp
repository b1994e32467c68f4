#include "gguf/value.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "ember/error.hpp"

namespace ember::gguf {

const char* value_type_name(ValueType t) noexcept {
    switch (t) {
        case ValueType::U8: return "uint8";
        case ValueType::I8: return "int8";
        case ValueType::U16: return "uint16";
        case ValueType::I16: return "int16";
        case ValueType::U32: return "uint32";
        case ValueType::I32: return "int32";
        case ValueType::F32: return "float32";
        case ValueType::Bool: return "bool";
        case ValueType::String: return "string";
        case ValueType::Array: return "array";
        case ValueType::U64: return "uint64";
        case ValueType::I64: return "int64";
        case ValueType::F64: return "float64";
    }
    return "unknown";
}

bool is_valid_value_type(uint32_t raw) noexcept { return raw <= static_cast<uint32_t>(ValueType::F64); }

size_t scalar_size(ValueType t) noexcept {
    switch (t) {
        case ValueType::U8: case ValueType::I8: case ValueType::Bool: return 1;
        case ValueType::U16: case ValueType::I16: return 2;
        case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
        case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
        case ValueType::String: case ValueType::Array: return 0;
    }
    return 0;
}

namespace {
bool is_signed(ValueType t) {
    return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}
bool is_int(ValueType t) { return is_signed(t) || t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 || t == ValueType::U64; }

// Sign-extends the raw little-endian bits of a signed scalar.
int64_t signed_of(ValueType t, uint64_t bits) {
    switch (t) {
        case ValueType::I8: return static_cast<int8_t>(bits);
        case ValueType::I16: return static_cast<int16_t>(bits);
        case ValueType::I32: return static_cast<int32_t>(bits);
        default: return static_cast<int64_t>(bits);
    }
}

double float_of(ValueType t, uint64_t bits) {
    if (t == ValueType::F32) {
        float f;
        uint32_t b = static_cast<uint32_t>(bits);
        std::memcpy(&f, &b, 4);
        return f;
    }
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
}

uint64_t load_bits(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);  // little-endian host assumed (x86-64, aarch64)
    return v;
}
}  // namespace

Value Value::f32(float v) {
    uint32_t b;
    std::memcpy(&b, &v, 4);
    return scalar(ValueType::F32, b);
}

Value Value::f64(double v) {
    uint64_t b;
    std::memcpy(&b, &v, 8);
    return scalar(ValueType::F64, b);
}

Value Value::string(std::string v) {
    Value r;
    r.type_ = ValueType::String;
    r.str_ = std::move(v);
    return r;
}

Value Value::strings(std::vector<std::string> v) {
    Value r;
    r.type_ = ValueType::Array;
    r.elem_ = ValueType::String;
    r.strings_ = std::move(v);
    return r;
}

Value Value::numbers(ValueType elem, std::vector<uint8_t> packed) {
    const size_t es = scalar_size(elem);
    if (es == 0 || packed.size() % es != 0)
        throw Error(Status::InvalidArgument, "gguf: numeric array needs a scalar element type and whole elements");
    Value r;
    r.type_ = ValueType::Array;
    r.elem_ = elem;
    r.packed_ = std::move(packed);
    return r;
}

Value Value::f32s(const std::vector<float>& v) {
    std::vector<uint8_t> p(v.size() * 4);
    if (!v.empty()) std::memcpy(p.data(), v.data(), p.size());
    return numbers(ValueType::F32, std::move(p));
}

Value Value::i32s(const std::vector<int32_t>& v) {
    std::vector<uint8_t> p(v.size() * 4);
    if (!v.empty()) std::memcpy(p.data(), v.data(), p.size());
    return numbers(ValueType::I32, std::move(p));
}

Value Value::arrays(std::vector<Value> v) {
    for (const auto& a : v)
        if (!a.is_array()) throw Error(Status::InvalidArgument, "gguf: an array of arrays holds only arrays");
    Value r;
    r.type_ = ValueType::Array;
    r.elem_ = ValueType::Array;
    r.arrays_ = std::move(v);
    return r;
}

bool Value::is_integer() const noexcept { return is_int(type_); }

void Value::wrong_type(const char* wanted) const {
    std::string have = value_type_name(type_);
    if (type_ == ValueType::Array) have += std::string(" of ") + value_type_name(elem_);
    throw Error(Status::BadFile, std::string("expected ") + wanted + ", found " + have);
}

uint64_t Value::as_uint() const {
    if (!is_int(type_)) wrong_type("an unsigned integer");
    if (is_signed(type_)) {
        int64_t s = signed_of(type_, bits_);
        if (s < 0) throw Error(Status::BadFile, "expected a non-negative integer, found " + std::to_string(s));
        return static_cast<uint64_t>(s);
    }
    return bits_;
}

int64_t Value::as_int() const {
    if (!is_int(type_)) wrong_type("an integer");
    if (is_signed(type_)) return signed_of(type_, bits_);
    if (bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(Status::BadFile, "integer " + std::to_string(bits_) + " does not fit int64");
    return static_cast<int64_t>(bits_);
}

double Value::as_float() const {
    if (type_ != ValueType::F32 && type_ != ValueType::F64) wrong_type("a float");
    return float_of(type_, bits_);
}

bool Value::as_bool() const {
    if (type_ != ValueType::Bool) wrong_type("a bool");
    return bits_ != 0;
}

const std::string& Value::as_string() const {
    if (type_ != ValueType::String) wrong_type("a string");
    return str_;
}

ValueType Value::elem_type() const {
    if (type_ != ValueType::Array) wrong_type("an array");
    return elem_;
}

size_t Value::size() const {
    if (type_ != ValueType::Array) wrong_type("an array");
    if (elem_ == ValueType::String) return strings_.size();
    if (elem_ == ValueType::Array) return arrays_.size();
    return packed_.size() / scalar_size(elem_);
}

const std::vector<std::string>& Value::as_strings() const {
    if (type_ != ValueType::Array || elem_ != ValueType::String) wrong_type("an array of strings");
    return strings_;
}

const std::vector<Value>& Value::as_arrays() const {
    if (type_ != ValueType::Array || elem_ != ValueType::Array) wrong_type("an array of arrays");
    return arrays_;
}

const std::vector<uint8_t>& Value::packed() const {
    if (type_ != ValueType::Array || scalar_size(elem_) == 0) wrong_type("a numeric array");
    return packed_;
}

std::vector<float> Value::as_floats() const {
    if (type_ != ValueType::Array || (elem_ != ValueType::F32 && elem_ != ValueType::F64)) wrong_type("an array of floats");
    const size_t es = scalar_size(elem_), n = packed_.size() / es;
    std::vector<float> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(float_of(elem_, load_bits(&packed_[i * es], es)));
    return out;
}

std::vector<int64_t> Value::as_ints() const {
    if (type_ != ValueType::Array || !is_int(elem_)) wrong_type("an array of integers");
    const size_t es = scalar_size(elem_), n = packed_.size() / es;
    std::vector<int64_t> out(n);
    for (size_t i = 0; i < n; ++i) {
        uint64_t b = load_bits(&packed_[i * es], es);
        if (is_signed(elem_)) {
            out[i] = signed_of(elem_, b);
        } else if (b > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            throw Error(Status::BadFile, "array integer does not fit int64");
        } else {
            out[i] = static_cast<int64_t>(b);
        }
    }
    return out;
}

std::string Value::describe() const {
    switch (type_) {
        case ValueType::String: return str_.size() > 60 ? "\"" + str_.substr(0, 57) + "...\"" : "\"" + str_ + "\"";
        case ValueType::Bool: return bits_ ? "true" : "false";
        case ValueType::F32: case ValueType::F64: return std::to_string(as_float());
        case ValueType::Array: return std::string("[") + value_type_name(elem_) + " x " + std::to_string(size()) + "]";
        default: return is_signed(type_) ? std::to_string(as_int()) : std::to_string(bits_);
    }
}

}  // namespace ember::gguf

namespace ember::gguf {
namespace {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates), 0 when there is none.
size_t utf8_valid_len(std::string_view s, size_t i) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (i + n > s.size()) return 0;
    if (b(i + 1) < lo || b(i + 1) > hi) return 0;
    for (size_t k = 2; k < n; ++k)
        if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
    return n;
}

void json_string(std::string& out, std::string_view s) {
    out += '"';
    for (size_t i = 0; i < s.size();) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        const size_t n = utf8_valid_len(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";  // U+FFFD
            ++i;
            continue;
        }
        if (n > 1) {
            out.append(s.substr(i, n));
        } else if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
        i += n;
    }
    out += '"';
}

void json_scalar(std::string& out, ValueType t, uint64_t bits) {
    if (t == ValueType::Bool) {
        out += bits ? "true" : "false";
    } else if (t == ValueType::F32 || t == ValueType::F64) {
        const double d = float_of(t, bits);
        if (!std::isfinite(d)) {
            out += "null";
            return;
        }
        char buf[32];
        std::snprintf(buf, sizeof buf, t == ValueType::F32 ? "%.9g" : "%.17g", d);
        out += buf;
    } else if (is_signed(t)) {
        out += std::to_string(signed_of(t, bits));
    } else {
        out += std::to_string(bits);
    }
}

void json_value(std::string& out, const Value& v) {
    switch (v.type()) {
        case ValueType::String: json_string(out, v.as_string()); return;
        case ValueType::Array: break;
        default: json_scalar(out, v.type(), v.bits()); return;
    }
    out += '[';
    const ValueType e = v.elem_type();
    if (e == ValueType::String) {
        const auto& xs = v.as_strings();
        for (size_t i = 0; i < xs.size(); ++i) {
            if (i) out += ',';
            json_string(out, xs[i]);
        }
    } else if (e == ValueType::Array) {
        const auto& xs = v.as_arrays();
        for (size_t i = 0; i < xs.size(); ++i) {
            if (i) out += ',';
            json_value(out, xs[i]);
        }
    } else {
        const auto& p = v.packed();
        const size_t es = scalar_size(e);
        for (size_t i = 0; i * es < p.size(); ++i) {
            if (i) out += ',';
            json_scalar(out, e, load_bits(&p[i * es], es));
        }
    }
    out += ']';
}

}  // namespace

std::string Value::to_json() const {
    std::string out;
    json_value(out, *this);
    return out;
}

}  // namespace ember::gguf
