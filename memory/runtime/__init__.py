"""The floor under both packages: process-wide helpers that know nothing of memories or models.

`torch_thread` (all torch work on one thread) and `private_files` (owner-only directories and
files). memory/ and assistant/ both use them; they import nothing from memchat. They live inside
memory/ only because the design card fixes the top level; nothing here may import memory's other
modules, and a test holds it to that.
"""
