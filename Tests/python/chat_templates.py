"""Chat templates as data, for test_chat_templates.py: each in the shape of a well-known model
family's template (rewritten here, not copied), so that distilld's renderer meets the constructs
real templates use: ChatML with a default system turn, Llama 2's system folding and role checks,
Llama 3's headers, Mistral's alternation, Zephyr's one-tag-a-line layout (trim_blocks at work),
Gemma's role renaming, Phi-3's else branch, a Qwen2-like template with tools and `-` whitespace
control, a newer Mistral one with attribute filters, and a few constructs on their own (namespaces, slices, loop variables, filters, tests)."""

CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Roles must alternate between user and assistant') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

MISTRAL = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

ZEPHYR = """{% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>
' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>
' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>
'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %}"""

GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

QWEN2_TOOLS = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "tool" %}
        {{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# Newer Mistral style: the system message folded into the last user turn, users counted with
# selectattr, every tag trimmed with `-`.
MISTRAL_V3 = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}
{%- set roles = loop_messages | map(attribute="role") | map("upper") | join("/") %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message["role"] == "user") != (loop.index0 % 2 == 0) %}
        {{- raise_exception("Roles must alternate user/assistant after the optional system message") }}
    {%- endif %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined and user_messages | length > 0 %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token }}
    {%- endif %}
{%- endfor %}
{{- " (" ~ roles ~ ")" }}
"""

# Indented blocks without `-`: lstrip_blocks removes the indentation before a block tag,
# trim_blocks the newline after it; output tags keep theirs.
INDENTED = """{# a comment on its own line #}
{% for message in messages %}
    {% if message.role == 'system' %}
  [system] {{ message.content }}
    {% else %}
  [{{ message.role | upper }}] {{ message.content }}  {# trailing comment #}
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}  [ASSISTANT]{% endif %}
"""

CONSTRUCTS = """{%- set ns = namespace(count=0, last='') -%}
{%- for m in messages if m.role != 'system' -%}
{%- set ns.count = ns.count + 1 -%}{%- set ns.last = m.content -%}
{{ loop.index }}/{{ loop.length }}{{ '*' if loop.first }}{{ '$' if loop.last else '' }} {{ m['role'][:3] }}:{{ m.content.split()|length }}|
{%- endfor %}
count={{ ns.count }} last={{ ns.last|lower|tojson }} rev={{ messages[::-1][0].role }} keys={{ {'b': 1, 'a': [1, 2.5, none, true]}|tojson }}
{{ messages|length * 2 - 1 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 'x' ~ 1 ~ none }} {{ [1, 'a', none, true] }}
{% if undefined_thing is not defined and messages[0].missing is undefined and none is none %}undefined-ok{% endif %}
{% if 'user' in no_roles|default(['user']) and 'ell' in messages[0].content and 'x' not in 'abc' %}in-ok{% endif %}
{{ messages[0].content.startswith(('Hel', 'x')) }} {{ 'a,b,,c'.split(',') }} {{ '  pad  '.strip() }}{{ 'xxhixx'.strip('x') }}
{%- for k, v in {'one': 1, 'two': 2}.items() %} {{ k }}={{ v }}{% endfor %}
{% for i in range(3) %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}{% for i in range(10) %}{% if i > 2 %}{% break %}{% endif %}{{ i }}{% endfor %}
{% for x in [] %}never{% else %}empty-else{% endfor %}
"""
# Llama 3.1/3.2 style: today's date from transformers' strftime_now when the environment has it
# (a renderer that lacks it silently writes the fallback date), a tool-calling branch with
# tojson(indent=4) that a chat without tools only parses, and the system turn pulled out first.
LLAMA3_DATED = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "01 Jan 1970" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", "parameters": ' + tool_call.arguments | tojson + '}' }}
        {{- "<|eot_id|>" }}
    {%- else %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

# Macros, as newer templates write a turn: defaults, keywords, a macro calling a macro, and
# tojson's keyword arguments on a value the template builds.
MACROS = """{%- macro header(role, mark='|') -%}
<{{ mark }}{{ role }}{{ mark }}>
{%- endmacro -%}
{%- macro turn(message, last=false) -%}
{{ header(message.role) }}{{ message.content | trim }}{% if not last %}<|end|>{% endif %}

{%- endmacro -%}
{%- for message in messages -%}
{{ turn(message, last=loop.last and message.role == 'assistant') }}
{%- endfor -%}
{%- if add_generation_prompt %}{{ header('assistant', mark='#') }}{% endif %}
{{ {'roles': messages | map(attribute='role') | list, 'n': messages | length} | tojson(indent=2, sort_keys=true) }}
"""

TEMPLATES = {
    "chatml": CHATML, "llama2": LLAMA2, "llama3": LLAMA3, "mistral": MISTRAL, "zephyr": ZEPHYR, "gemma": GEMMA,
    "phi3": PHI3, "qwen2-tools": QWEN2_TOOLS, "indented": INDENTED, "mistral-v3": MISTRAL_V3,
    "llama3-dated": LLAMA3_DATED, "macros": MACROS,
}

# Chats every template above accepts (user first, alternating), with and without a system turn
# for the ones that take one; contents with spaces at the ends, newlines, quotes and non-ASCII.
USER_ONLY = [{"role": "user", "content": "Hello there"}]
WITH_SYSTEM = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "  Quoted 'x' and \"y\"\nnext line é ✓  "}]
TAKES_SYSTEM = {"chatml", "llama2", "llama3", "zephyr", "phi3", "qwen2-tools", "indented", "llama3-dated", "macros"}
