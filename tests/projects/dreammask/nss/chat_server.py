"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions protocol, scripted per test."""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(content: str) -> dict:
    return {
        'id': 'chatcmpl-test',
        'object': 'chat.completion',
        'model': 'test-model',
        'choices': [{
            'index': 0,
            'message': {
                'role': 'assistant',
                'content': content
            },
            'finish_reason': 'stop'
        }]
    }


class ChatServer:
    """``script``: list of actions consumed one per request; when empty, ``default(request) -> action``.

    Actions: ``('ok', content)``, ``('status', code)``, ``('raw', body_text)``,
    ``('sleep', seconds, content)``.
    Every request is recorded in ``requests`` as ``{'body', 'headers', 'path'}``.
    """

    def __init__(self, script=(), default=None):
        self.script = list(script)
        self.default = default or (lambda req: ('ok', '[]'))
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get('Content-Length', 0))
                body = json.loads(self.rfile.read(n) or b'{}')
                with server.lock:
                    server.requests.append({'body': body, 'headers': dict(self.headers), 'path': self.path})
                    action = server.script.pop(0) if server.script else server.default(body)
                kind = action[0]
                try:
                    if kind == 'sleep':
                        time.sleep(action[1])
                        self._send(200, json.dumps(completion(action[2])))
                    elif kind == 'status':
                        self._send(action[1], json.dumps({'error': {'message': 'scripted failure'}}))
                    elif kind == 'raw':
                        self._send(200, action[1])
                    else:
                        self._send(200, json.dumps(completion(action[1])))
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, code, text):
                data = text.encode()
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.httpd.server_address[1]}/v1'

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def names_in_layout_prompt(body: dict) -> list[str]:
    """Category names listed as '- name' lines in the layout prompt."""
    text = body['messages'][-1]['content']
    block = text.split('containing these categories:')[1].split('Rules:')[0]
    return [m.group(1).strip() for m in re.finditer(r'^- (.+)$', block, re.M)]


def good_layout_html(names, width, height) -> str:
    """A valid answer: one box per name in a grid."""
    n = len(names)
    cols = 3
    cw, ch = width // cols, height // ((n + cols - 1) // cols)
    divs = []
    for k, name in enumerate(names):
        x, y = (k % cols) * cw, (k // cols) * ch
        divs.append(
            f'<div class="object" data-name="{name}" style="position:absolute; left:{x}px; top:{y}px; '
            f'width:{cw - 2}px; height:{ch - 2}px;"></div>')
    return (f'<div class="canvas" style="position:relative; width:{width}px; height:{height}px;">\n' +
            '\n'.join(divs) + '\n</div>')
