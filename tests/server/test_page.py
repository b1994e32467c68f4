#!/usr/bin/env python3
"""ember-server's chat page in headless Chromium, driven by Selenium as a person would use it: type a
message, watch the streamed reply grow, press Stop midway, reload and find the conversation kept, see a
code block shown as code. Leaves a screenshot at SCREENSHOT.

    test_page.py EMBER_SERVER MODEL SCREENSHOT

Exit 77 (ctest's skip) without chromium, chromedriver or selenium ($EMBER_PYDEPS), unless
EMBER_REQUIRE_FIXTURES is set."""
import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check  # noqa: E402

SHOT = sys.argv[3]
sys.path.insert(0, os.environ.get("EMBER_PYDEPS", os.path.expanduser("~/.cache/ember/python")))
try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.chrome.service import Service
    CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
    if not (CHROMIUM and DRIVER):
        raise ImportError("chromium and chromium-driver (Debian) are needed")
except ImportError as e:
    if os.environ.get("EMBER_REQUIRE_FIXTURES"):
        raise
    print(f"skipped: {e}")
    sys.exit(77)


# Generous: a headless Chromium beside a parallel ctest on 2 cores once missed 20 s (it returns at once when met).
def wait(cond, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out: {what}")


def main():
    s = Server("--parallel", "1", "-c", "8192", "--max-tokens", "8000")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,800"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        status, headers, page = s.request("GET", "/")
        check(status == 200 and "<title>ember chat</title>" in page, "the page is served at /")
        check(not re.search(r"(src|href)=\"https?://", page), "nothing is fetched from elsewhere")
        driver.get(f"http://127.0.0.1:{s.port}/")
        driver.find_element(By.ID, "temperature").clear()
        driver.find_element(By.ID, "temperature").send_keys("0")
        box = driver.find_element(By.ID, "input")
        box.send_keys("Once upon a time there was a little dog")
        driver.find_element(By.ID, "send").click()

        # The reply grows while it streams.
        wait(lambda: driver.find_elements(By.ID, "streaming"), "the reply appears")
        lengths = []
        for _ in range(200):
            el = driver.find_elements(By.ID, "streaming")
            if not el:
                break
            lengths.append(len(el[0].text))
            if len(set(lengths)) >= 3 and lengths[-1] > 40:
                break
            time.sleep(0.01)
        check(len(set(lengths)) >= 3 and lengths == sorted(lengths), f"streamed text grows: {lengths[:12]}…")

        # Stop midway: the reply stops growing, the status says so, and the server's slot is free.
        driver.find_element(By.ID, "stop").click()
        wait(lambda: driver.find_element(By.ID, "status").text == "stopped", "stopped")
        replies = driver.find_elements(By.CSS_SELECTOR, ".msg.assistant")
        kept = replies[-1].text
        time.sleep(0.3)
        check(driver.find_elements(By.CSS_SELECTOR, ".msg.assistant")[-1].text == kept, "nothing after Stop")
        wait(lambda: re.search(r"^ember_slots_busy 0", s.request("GET", "/metrics")[2], re.M), "the slot is freed")
        metrics = s.request("GET", "/metrics")[2]
        generated = float(re.search(r"^ember_tokens_generated_total (\S+)", metrics, re.M).group(1))
        check(generated < 7900, f"generation stopped at Stop ({generated} tokens)")

        # Kept in the browser: after a reload the conversation and its two messages are there.
        driver.refresh()
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".conv"), "the conversation list")
        check(driver.find_elements(By.CSS_SELECTOR, ".conv")[0].text.startswith("Once upon a time"), "titled")
        msgs = driver.find_elements(By.CSS_SELECTOR, ".msg")
        check(len(msgs) == 2 and msgs[1].text == kept, "the messages survive a reload")

        # A code block is shown as code.
        chats = json.loads(driver.execute_script("return localStorage.getItem('ember-chats')"))
        chats[0]["messages"].append({"role": "assistant", "content": "Here:\n```python\nprint('hi')\n```\nDone."})
        driver.execute_script("localStorage.setItem('ember-chats', arguments[0])", json.dumps(chats))
        driver.refresh()
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".msg pre code"), "a code block")
        check(driver.find_element(By.CSS_SELECTOR, ".msg pre code").text.strip() == "print('hi')", "the code")

        # A short greedy reply to finish, then the screenshot.
        driver.find_element(By.ID, "input").send_keys("The cat sat on the mat.")
        driver.find_element(By.ID, "send").click()
        time.sleep(0.5)
        driver.find_element(By.ID, "stop").click()
        wait(lambda: not driver.find_elements(By.ID, "streaming"), "the reply ends")
        driver.save_screenshot(SHOT)
        print(f"screenshot: {SHOT}")
    finally:
        driver.quit()
        s.stop()
    print("page: passed")


if __name__ == "__main__":
    main()
