// One GGUF metadata value. Used by both the reader and the writer, so it owns its storage.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember::gguf {

enum class ValueType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
    String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};

const char* value_type_name(ValueType t) noexcept;
bool is_valid_value_type(uint32_t raw) noexcept;
size_t scalar_size(ValueType t) noexcept;  // 0 for String and Array

class Value {
public:
    Value() = default;
    static Value u8(uint8_t v) { return scalar(ValueType::U8, v); }
    static Value i8(int8_t v) { return scalar(ValueType::I8, static_cast<uint8_t>(v)); }
    static Value u16(uint16_t v) { return scalar(ValueType::U16, v); }
    static Value i16(int16_t v) { return scalar(ValueType::I16, static_cast<uint16_t>(v)); }
    static Value u32(uint32_t v) { return scalar(ValueType::U32, v); }
    static Value i32(int32_t v) { return scalar(ValueType::I32, static_cast<uint32_t>(v)); }
    static Value u64(uint64_t v) { return scalar(ValueType::U64, v); }
    static Value i64(int64_t v) { return scalar(ValueType::I64, static_cast<uint64_t>(v)); }
    static Value f32(float v);
    static Value f64(double v);
    static Value boolean(bool v) { return scalar(ValueType::Bool, v ? 1 : 0); }
    static Value string(std::string v);
    static Value strings(std::vector<std::string> v);
    // A numeric array from packed little-endian elements of `elem` type.
    static Value numbers(ValueType elem, std::vector<uint8_t> packed);
    static Value f32s(const std::vector<float>& v);
    static Value i32s(const std::vector<int32_t>& v);
    static Value arrays(std::vector<Value> v);  // array of arrays

    ValueType type() const noexcept { return type_; }
    bool is_integer() const noexcept;
    bool is_array() const noexcept { return type_ == ValueType::Array; }

    // Typed reads; each throws ember::Error(BadFile) naming the actual type when it does not fit.
    uint64_t as_uint() const;        // any integer type with a non-negative value
    int64_t as_int() const;          // any integer type that fits int64
    double as_float() const;         // F32 or F64
    bool as_bool() const;
    const std::string& as_string() const;

    ValueType elem_type() const;     // for arrays
    size_t size() const;             // element count, for arrays
    const std::vector<std::string>& as_strings() const;    // array of strings
    const std::vector<Value>& as_arrays() const;           // array of arrays
    std::vector<float> as_floats() const;                  // array of F32/F64
    std::vector<int64_t> as_ints() const;                  // array of any integer type
    const std::vector<uint8_t>& packed() const;            // raw bytes of a numeric array

    std::string describe() const;  // short human-readable form for `info` output
    // The whole value as JSON: strings with non-UTF-8 bytes as U+FFFD, non-finite floats as null.
    std::string to_json() const;

    // Raw scalar bits, zero-extended little-endian; for the writer.
    uint64_t bits() const noexcept { return bits_; }

    bool operator==(const Value& o) const = default;

private:
    static Value scalar(ValueType t, uint64_t bits) {
        Value v;
        v.type_ = t;
        v.bits_ = bits;
        return v;
    }
    [[noreturn]] void wrong_type(const char* wanted) const;

    ValueType type_ = ValueType::U8;
    ValueType elem_ = ValueType::U8;
    uint64_t bits_ = 0;
    std::string str_;
    std::vector<uint8_t> packed_;       // numeric array
    std::vector<std::string> strings_;  // string array
    std::vector<Value> arrays_;         // nested arrays
};

}  // namespace ember::gguf
