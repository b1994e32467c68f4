// A minimal JSON reader for test fixtures (golden files): objects, arrays, numbers, strings, bools, null.
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ember::test {

struct Json {
    enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
    bool b = false;
    double num = 0;
    std::string str;
    std::vector<Json> arr;
    std::map<std::string, Json> obj;

    const Json& operator[](const std::string& k) const {
        auto it = obj.find(k);
        if (it == obj.end()) throw std::runtime_error("json: no key " + k);
        return it->second;
    }
    const Json& operator[](size_t i) const { return arr.at(i); }
    bool has(const std::string& k) const { return obj.count(k) != 0; }
    size_t size() const { return kind == Array ? arr.size() : obj.size(); }
    int64_t i() const { return static_cast<int64_t>(num); }
    float f() const { return static_cast<float>(num); }

    static Json parse(const std::string& s) {
        size_t p = 0;
        Json j = value(s, p);
        return j;
    }
    static Json load(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw std::runtime_error("cannot open " + path);
        std::stringstream ss;
        ss << in.rdbuf();
        return parse(ss.str());
    }

private:
    static void ws(const std::string& s, size_t& p) {
        while (p < s.size() && (s[p] == ' ' || s[p] == '\n' || s[p] == '\r' || s[p] == '\t')) ++p;
    }
    static void utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) out += static_cast<char>(cp);
        else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 63)); }
        else if (cp < 0x10000) { out += static_cast<char>(0xE0 | (cp >> 12)); out += static_cast<char>(0x80 | ((cp >> 6) & 63)); out += static_cast<char>(0x80 | (cp & 63)); }
        else { out += static_cast<char>(0xF0 | (cp >> 18)); out += static_cast<char>(0x80 | ((cp >> 12) & 63)); out += static_cast<char>(0x80 | ((cp >> 6) & 63)); out += static_cast<char>(0x80 | (cp & 63)); }
    }
    static std::string string(const std::string& s, size_t& p) {
        std::string out;
        ++p;  // opening quote
        while (p < s.size() && s[p] != '"') {
            if (s[p] != '\\') { out += s[p++]; continue; }
            ++p;
            const char e = s[p++];
            switch (e) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'u': {
                    unsigned cp = std::stoul(s.substr(p, 4), nullptr, 16);
                    p += 4;
                    if (cp >= 0xD800 && cp < 0xDC00 && s.compare(p, 2, "\\u") == 0) {
                        const unsigned lo = std::stoul(s.substr(p + 2, 4), nullptr, 16);
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        p += 6;
                    }
                    utf8(out, cp);
                    break;
                }
                default: out += e;
            }
        }
        ++p;
        return out;
    }
    static Json value(const std::string& s, size_t& p) {
        ws(s, p);
        Json j;
        if (p >= s.size()) throw std::runtime_error("json: unexpected end");
        const char c = s[p];
        if (c == '{') {
            j.kind = Object;
            ++p;
            ws(s, p);
            if (s[p] == '}') { ++p; return j; }
            for (;;) {
                ws(s, p);
                std::string k = string(s, p);
                ws(s, p);
                ++p;  // ':'
                j.obj[k] = value(s, p);
                ws(s, p);
                if (s[p++] == '}') return j;
            }
        }
        if (c == '[') {
            j.kind = Array;
            ++p;
            ws(s, p);
            if (s[p] == ']') { ++p; return j; }
            for (;;) {
                j.arr.push_back(value(s, p));
                ws(s, p);
                if (s[p++] == ']') return j;
            }
        }
        if (c == '"') { j.kind = String; j.str = string(s, p); return j; }
        if (s.compare(p, 4, "true") == 0) { j.kind = Bool; j.b = true; p += 4; return j; }
        if (s.compare(p, 5, "false") == 0) { j.kind = Bool; p += 5; return j; }
        if (s.compare(p, 4, "null") == 0) { p += 4; return j; }
        j.kind = Number;
        char* end = nullptr;
        j.num = std::strtod(s.c_str() + p, &end);
        p = static_cast<size_t>(end - s.c_str());
        return j;
    }
};

}  // namespace ember::test
