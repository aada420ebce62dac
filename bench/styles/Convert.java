// Rewrites a routing data set in Jackson's YAML default style:
// new ObjectMapper(new YAMLFactory()).writeValue(out, data) (a `---` line,
// block style, every string in double quotes, sequences not indented under
// their key). See convert.py.
//
// Debian packages Jackson, so no Maven repository is needed:
//
//	apt-get install default-jdk-headless libjackson2-dataformat-yaml libjackson2-databind-java
//	J=/usr/share/java; java -cp $J/jackson-databind.jar:$J/jackson-core.jar:$J/jackson-annotations.jar:$J/jackson-dataformat-yaml.jar:$J/snakeyaml.jar \
//	    bench/styles/Convert.java IN_DIR OUT_DIR
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;

public class Convert {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: Convert.java IN_DIR OUT_DIR");
            System.exit(2);
        }
        File src = new File(args[0]);
        File dst = new File(args[1]);
        dst.mkdirs();
        ObjectMapper mapper = new ObjectMapper(new YAMLFactory());
        String[] names = src.list();
        Arrays.sort(names);
        for (String name : names) {
            File from = new File(src, name);
            if (name.equals("calls.csv")) {
                Files.copy(from.toPath(), new File(dst, name).toPath(),
                        StandardCopyOption.REPLACE_EXISTING);
            }
            if (!name.endsWith(".yaml")) {
                continue;
            }
            // A generic tree, as an export job that builds its document
            // from maps and lists would hold it.
            Object data = mapper.readValue(from, Object.class);
            mapper.writeValue(new File(dst, name), data);
        }
    }
}
