#!/usr/bin/env ruby
# Rewrites a routing data set in Psych's default style: data.to_yaml
# (a `---` line, block style, sequences not indented under their key).
# See convert.py.
#
#     ruby bench/styles/convert.rb IN_DIR OUT_DIR
require "yaml"
require "fileutils"

src, dst = ARGV
abort "usage: convert.rb IN_DIR OUT_DIR" unless src && dst
FileUtils.mkdir_p(dst)
Dir.children(src).sort.each do |name|
  from = File.join(src, name)
  FileUtils.cp(from, File.join(dst, name)) if name == "calls.csv"
  next unless name.end_with?(".yaml")
  File.write(File.join(dst, name), YAML.safe_load(File.read(from)).to_yaml)
end
