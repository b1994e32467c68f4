// Parses JSON text after a first pass that counts its nesting and values, so a hostile document is
// refused before anything is built. (A callback to nlohmann's parse could count the same, but its
// callback parser scans the enclosing container again after every nested object closes: 100,000 `{}`
// in one array took 1.8 s, and time grows with the square of the count.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ember::json_limits {

// `refuse(message)` must throw; it is called with "over the size limit of N bytes", "nested deeper than N",
// "more than N keys and values" or "not valid JSON: ...". Keys, values and opening brackets count as values.
template <class Json, class Refuse>
Json parse(std::string_view text, uint64_t max_bytes, int max_depth, uint64_t max_values, Refuse&& refuse) {
    if (text.size() > max_bytes) refuse("over the size limit of " + std::to_string(max_bytes) + " bytes");
    // nlohmann-json reads a NUL as the end of the input; JSON has no place for one.
    if (const auto nul = text.find('\0'); nul != std::string_view::npos)
        refuse("not valid JSON: a NUL byte at " + std::to_string(nul));
    struct Limits : nlohmann::json_sax<Json> {
        using Base = nlohmann::json_sax<Json>;
        Limits(int d, uint64_t v, Refuse& r) : max_depth(d), max_values(v), refuse(r) {}
        bool null() override { return value(); }
        bool boolean(bool) override { return value(); }
        bool number_integer(typename Base::number_integer_t) override { return value(); }
        bool number_unsigned(typename Base::number_unsigned_t) override { return value(); }
        bool number_float(typename Base::number_float_t, const typename Base::string_t&) override { return value(); }
        bool string(typename Base::string_t&) override { return value(); }
        bool binary(typename Base::binary_t&) override { return value(); }
        bool key(typename Base::string_t&) override { return value(); }
        bool start_object(std::size_t) override { return open(); }
        bool start_array(std::size_t) override { return open(); }
        bool end_object() override { return --depth, true; }
        bool end_array() override { return --depth, true; }
        bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
            refuse(std::string("not valid JSON: ") + e.what());
            return false;
        }
        bool value() {
            if (++values > max_values) refuse("more than " + std::to_string(max_values) + " keys and values");
            return true;
        }
        bool open() {
            if (++depth > max_depth) refuse("nested deeper than " + std::to_string(max_depth));
            return value();
        }
        int max_depth, depth = 0;
        uint64_t max_values, values = 0;
        Refuse& refuse;
    };
    Limits limits(max_depth, max_values, refuse);
    try {
        Json::sax_parse(text.begin(), text.end(), &limits);
        return Json::parse(text.begin(), text.end());
    } catch (const nlohmann::detail::exception& e) {
        refuse(std::string("not valid JSON: ") + e.what());
    }
    return {};  // not reached: refuse throws
}

}  // namespace ember::json_limits
