import StackRuntime
import Testing

@Suite struct ConfigFileTests {
    @Test func readsKeysInBothFormsIgnoringCommentsBlanksAndSpaces() throws {
        let text = """
            # the stack's interface
            MTCP_IFACE = veth0

               addr=10.0.0.2/24   # trailing comment
            \tgateway\t=\t10.0.0.1\t
            stats = /tmp/a#b
            log = "debug"
            kernel_listen = 0\r
            """
        let file = try ConfigFile(text: text, path: "test.conf")
        #expect(
            file.settings == [
                .init(key: "MTCP_IFACE", value: "veth0", line: 2),
                .init(key: "MTCP_ADDR", value: "10.0.0.2/24", line: 4),
                .init(key: "MTCP_GATEWAY", value: "10.0.0.1", line: 5),
                .init(key: "MTCP_STATS", value: "/tmp/a#b", line: 6),
                .init(key: "MTCP_LOG", value: "debug", line: 7),
                .init(key: "MTCP_KERNEL_LISTEN", value: "0", line: 8),
            ])
    }

    @Test func emptyFileHasNoSettings() throws {
        #expect(try ConfigFile(text: "", path: "empty.conf").settings.isEmpty)
        #expect(try ConfigFile(text: "\n# only a comment\n\n", path: "empty.conf").settings.isEmpty)
    }

    @Test(arguments: [
        ("iface = a\nbogus = 1\n", "f.conf:2: unknown key 'bogus'"),
        ("iface = a\n\nMTCP_CONFIG = other\n", "f.conf:3: unknown key 'MTCP_CONFIG'"),
        ("IFACE = a\n", "f.conf:1: unknown key 'IFACE'"),
        ("mtcp_iface = a\n", "f.conf:1: unknown key 'mtcp_iface'"),
        ("# c\niface veth0\n", "f.conf:2: expected KEY = value"),
        ("iface =\n", "f.conf:1: iface has no value"),
        ("iface = \"\"\n", "f.conf:1: iface has no value"),
    ])
    func malformedLinesFailNamingFileAndLine(text: String, message: String) {
        #expect {
            _ = try ConfigFile(text: text, path: "f.conf")
        } throws: { error in
            "\(error)".hasPrefix(message)
        }
    }

    @Test func readsAFileFromDisk() throws {
        let file = TemporaryFile("cores = 3\nbackend = tap\n")
        let config = try ConfigFile(path: file.path)
        #expect(config.path == file.path)
        #expect(config.settings.map(\.key) == ["MTCP_CORES", "MTCP_BACKEND"])
    }

    @Test func missingFileFailsNamingIt() {
        #expect {
            _ = try ConfigFile(path: "/nonexistent/mtcp.conf")
        } throws: { error in
            "\(error)".contains("cannot open config file /nonexistent/mtcp.conf")
        }
    }
}
