#!/bin/sh
echo {{ name }}
echo {{ nope }}
